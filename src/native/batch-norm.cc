// Batch norm over a [rows, C] matrix (channels-last images flattened), with ReLU optionally fused.
// Written as plain OpenMP loops: the op is memory-bound, and fusing the ReLU and its mask into the
// same passes saves a full read and write of the activation in each direction.
#include <omp.h>

#include <cmath>
#include <vector>

#include "common.h"

namespace strata {
namespace {

// Per-channel sums of x and x^2 in double precision (rows reach 10^5 and more).
void channel_moments(int64_t rows, int64_t C, const float* x, std::vector<double>& sum, std::vector<double>& sq) {
  sum.assign(C, 0.0);
  sq.assign(C, 0.0);
#pragma omp parallel
  {
    std::vector<double> ls(C, 0.0), lq(C, 0.0);
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; r++) {
      const float* row = x + r * C;
      for (int64_t c = 0; c < C; c++) {
        double v = row[c];
        ls[c] += v;
        lq[c] += v * v;
      }
    }
#pragma omp critical
    for (int64_t c = 0; c < C; c++) {
      sum[c] += ls[c];
      sq[c] += lq[c];
    }
  }
}

void affine_rows(int64_t rows, int64_t C, const float* x, const float* a, const float* b, bool relu, float* y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * C;
    float* yr = y + r * C;
    if (relu) {
      for (int64_t c = 0; c < C; c++) {
        float v = xr[c] * a[c] + b[c];
        yr[c] = v > 0.f ? v : 0.f;
      }
    } else {
      for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * a[c] + b[c];
    }
  }
}

// batchNormForwardTraining(rows, C, x, gamma, beta, eps, relu, y, mean, variance)
Napi::Value ForwardTraining(const Napi::CallbackInfo& info) {
  const char* op = "batchNormForwardTraining";
  int64_t rows = int_value(info, 0, op, "rows"), C = int_value(info, 1, op, "channels");
  size_t n = static_cast<size_t>(rows * C);
  FloatArg x = float_arg(info, 2, op, "x", n);
  FloatArg gamma = float_arg(info, 3, op, "gamma", C), beta = float_arg(info, 4, op, "beta", C);
  double eps = num_value(info, 5, op, "eps");
  bool relu = info[6].ToBoolean();
  FloatArg y = float_arg(info, 7, op, "y", n);
  FloatArg mean = float_arg(info, 8, op, "mean", C), var = float_arg(info, 9, op, "variance", C);
  if (rows < 1) throw Napi::RangeError::New(info.Env(), std::string(op) + ": needs at least one row");
  std::vector<double> sum, sq;
  channel_moments(rows, C, x.data, sum, sq);
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; c++) {
    double m = sum[c] / rows;
    double v = std::max(0.0, sq[c] / rows - m * m);
    mean.data[c] = static_cast<float>(m);
    var.data[c] = static_cast<float>(v);
    double inv = 1.0 / std::sqrt(v + eps);
    a[c] = static_cast<float>(gamma.data[c] * inv);
    b[c] = static_cast<float>(beta.data[c] - m * gamma.data[c] * inv);
  }
  affine_rows(rows, C, x.data, a.data(), b.data(), relu, y.data);
  return info.Env().Undefined();
}

// batchNormForwardInference(rows, C, x, gamma, beta, mean, variance, eps, relu, y)
Napi::Value ForwardInference(const Napi::CallbackInfo& info) {
  const char* op = "batchNormForwardInference";
  int64_t rows = int_value(info, 0, op, "rows"), C = int_value(info, 1, op, "channels");
  size_t n = static_cast<size_t>(rows * C);
  FloatArg x = float_arg(info, 2, op, "x", n);
  FloatArg gamma = float_arg(info, 3, op, "gamma", C), beta = float_arg(info, 4, op, "beta", C);
  FloatArg mean = float_arg(info, 5, op, "mean", C), var = float_arg(info, 6, op, "variance", C);
  double eps = num_value(info, 7, op, "eps");
  bool relu = info[8].ToBoolean();
  FloatArg y = float_arg(info, 9, op, "y", n);
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; c++) {
    double inv = 1.0 / std::sqrt(static_cast<double>(var.data[c]) + eps);
    a[c] = static_cast<float>(gamma.data[c] * inv);
    b[c] = static_cast<float>(beta.data[c] - mean.data[c] * gamma.data[c] * inv);
  }
  affine_rows(rows, C, x.data, a.data(), b.data(), relu, y.data);
  return info.Env().Undefined();
}

// batchNormBackward(rows, C, x, dy, gamma, mean, variance, eps, relu, y, dx, dgamma, dbeta)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* op = "batchNormBackward";
  int64_t rows = int_value(info, 0, op, "rows"), C = int_value(info, 1, op, "channels");
  size_t n = static_cast<size_t>(rows * C);
  FloatArg x = float_arg(info, 2, op, "x", n), dy = float_arg(info, 3, op, "dy", n);
  FloatArg gamma = float_arg(info, 4, op, "gamma", C);
  FloatArg mean = float_arg(info, 5, op, "mean", C), var = float_arg(info, 6, op, "variance", C);
  double eps = num_value(info, 7, op, "eps");
  bool relu = info[8].ToBoolean();
  FloatArg y = float_arg(info, 9, op, "y", relu ? n : 0, !relu);
  FloatArg dx = float_arg(info, 10, op, "dx", n);
  FloatArg dgamma = float_arg(info, 11, op, "dgamma", C), dbeta = float_arg(info, 12, op, "dbeta", C);
  if (rows < 1) throw Napi::RangeError::New(info.Env(), std::string(op) + ": needs at least one row");

  std::vector<float> inv(C), mu(C);
  for (int64_t c = 0; c < C; c++) {
    inv[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var.data[c]) + eps));
    mu[c] = mean.data[c];
  }
  std::vector<double> sum_dy(C, 0.0), sum_dy_xhat(C, 0.0);
  const float* yp = y.data;
#pragma omp parallel
  {
    std::vector<double> l1(C, 0.0), l2(C, 0.0);
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; r++) {
      const float* xr = x.data + r * C;
      const float* dr = dy.data + r * C;
      const float* yr = relu ? yp + r * C : nullptr;
      for (int64_t c = 0; c < C; c++) {
        float g = (relu && yr[c] <= 0.f) ? 0.f : dr[c];
        l1[c] += g;
        l2[c] += static_cast<double>(g) * (xr[c] - mu[c]) * inv[c];
      }
    }
#pragma omp critical
    for (int64_t c = 0; c < C; c++) {
      sum_dy[c] += l1[c];
      sum_dy_xhat[c] += l2[c];
    }
  }
  std::vector<float> k(C), m1(C), m2(C);
  for (int64_t c = 0; c < C; c++) {
    dgamma.data[c] = static_cast<float>(sum_dy_xhat[c]);
    dbeta.data[c] = static_cast<float>(sum_dy[c]);
    k[c] = gamma.data[c] * inv[c];
    m1[c] = static_cast<float>(sum_dy[c] / rows);
    m2[c] = static_cast<float>(sum_dy_xhat[c] / rows);
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x.data + r * C;
    const float* dr = dy.data + r * C;
    const float* yr = relu ? yp + r * C : nullptr;
    float* out = dx.data + r * C;
    for (int64_t c = 0; c < C; c++) {
      float g = (relu && yr[c] <= 0.f) ? 0.f : dr[c];
      float xhat = (xr[c] - mu[c]) * inv[c];
      out[c] = k[c] * (g - m1[c] - xhat * m2[c]);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void register_batch_norm(Napi::Env env, Napi::Object exports) {
  exports.Set("batchNormForwardTraining", Napi::Function::New(env, ForwardTraining));
  exports.Set("batchNormForwardInference", Napi::Function::New(env, ForwardInference));
  exports.Set("batchNormBackward", Napi::Function::New(env, Backward));
}

}  // namespace strata
