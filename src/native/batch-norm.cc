// Batch norm over a [rows, C] matrix (channels-last images flattened), with ReLU optionally fused.
// Written as plain OpenMP loops: the op is memory-bound, and fusing the ReLU and its mask into the
// same passes saves a full read and write of the activation in each direction.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace strata {
namespace {

// Rows are summed in float over short blocks (so the inner loop vectorises) and the blocks in
// double (so the totals of 10^5 and more rows keep their precision).
constexpr int64_t kBlockRows = 64;

template <typename RowFn>
void blocked_channel_sums(int64_t rows, int64_t C, std::vector<double>& s1, std::vector<double>& s2, RowFn row) {
  s1.assign(C, 0.0);
  s2.assign(C, 0.0);
  int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  // Every thread's scratch is allocated here, before the parallel region: an allocation that
  // throws inside an OpenMP region cannot be caught and terminates the process.
  const int threads = std::max(1, omp_get_max_threads());
  std::vector<double> dsum(static_cast<size_t>(threads) * 2 * C, 0.0);
  std::vector<float> fsum(static_cast<size_t>(threads) * 2 * C);
#pragma omp parallel num_threads(threads)
  {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    double* d1 = dsum.data() + t * 2 * C;
    double* d2 = d1 + C;
    float* f1 = fsum.data() + t * 2 * C;
    float* f2 = f1 + C;
#pragma omp for schedule(static) nowait
    for (int64_t b = 0; b < blocks; b++) {
      std::fill(f1, f1 + C, 0.f);
      std::fill(f2, f2 + C, 0.f);
      int64_t end = std::min(rows, (b + 1) * kBlockRows);
      for (int64_t r = b * kBlockRows; r < end; r++) row(r, f1, f2);
      for (int64_t c = 0; c < C; c++) {
        d1[c] += f1[c];
        d2[c] += f2[c];
      }
    }
  }
  // Summed in thread order after the region (not in a critical section in completion order), so
  // the totals do not depend on which thread finished first.
  for (int t = 0; t < threads; t++) {
    const double* d1 = dsum.data() + static_cast<size_t>(t) * 2 * C;
    for (int64_t c = 0; c < C; c++) {
      s1[c] += d1[c];
      s2[c] += d1[C + c];
    }
  }
}

// Per-channel sums of x and of (x - shift)^2; the shift (an estimate of the mean) keeps the
// variance from cancelling catastrophically.
void channel_moments(int64_t rows, int64_t C, const float* x, std::vector<double>& sum, std::vector<double>& sq) {
  std::vector<float> shift(x, x + C);
  const float* sh = shift.data();
  blocked_channel_sums(rows, C, sum, sq, [&](int64_t r, float* a, float* b) {
    const float* xr = x + r * C;
    for (int64_t c = 0; c < C; c++) {
      float d = xr[c] - sh[c];
      a[c] += d;
      b[c] += d * d;
    }
  });
  for (int64_t c = 0; c < C; c++) sum[c] += static_cast<double>(sh[c]) * rows;  // back to sums of x
  // sq holds sum (x - shift)^2; convert to sum x^2 - n mean^2 form below via the caller's shift.
  for (int64_t c = 0; c < C; c++) {
    double n = static_cast<double>(rows);
    double mean_shifted = (sum[c] - sh[c] * n) / n;
    sq[c] = sq[c] - n * mean_shifted * mean_shifted;  // n * variance
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
  size_t n = checked_count(info.Env(), op, "x", {rows, C});
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
    double v = std::max(0.0, sq[c] / rows);
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
  size_t n = checked_count(info.Env(), op, "x", {rows, C});
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
  size_t n = checked_count(info.Env(), op, "x", {rows, C});
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
  // Sum of g and of g * (x - mean) per channel, where g is dy masked by the fused ReLU.
  std::vector<double> sum_dy, sum_dy_xc;
  const float* yp = y.data;
  const float* mp = mu.data();
  if (relu) {
    blocked_channel_sums(rows, C, sum_dy, sum_dy_xc, [&](int64_t r, float* a, float* b) {
      const float *xr = x.data + r * C, *dr = dy.data + r * C, *yr = yp + r * C;
      for (int64_t c = 0; c < C; c++) {
        // Unconditional loads and a select (not a branch) let the loop vectorise.
        float d = dr[c];
        float g = yr[c] > 0.f ? d : 0.f;
        a[c] += g;
        b[c] += g * (xr[c] - mp[c]);
      }
    });
  } else {
    blocked_channel_sums(rows, C, sum_dy, sum_dy_xc, [&](int64_t r, float* a, float* b) {
      const float *xr = x.data + r * C, *dr = dy.data + r * C;
      for (int64_t c = 0; c < C; c++) {
        a[c] += dr[c];
        b[c] += dr[c] * (xr[c] - mp[c]);
      }
    });
  }
  std::vector<double> sum_dy_xhat(C);
  for (int64_t c = 0; c < C; c++) sum_dy_xhat[c] = sum_dy_xc[c] * inv[c];
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
    float* out = dx.data + r * C;
    if (relu) {
      const float* yr = yp + r * C;
      for (int64_t c = 0; c < C; c++) {
        float d = dr[c];
        float g = yr[c] > 0.f ? d : 0.f;
        out[c] = k[c] * (g - m1[c] - (xr[c] - mu[c]) * inv[c] * m2[c]);
      }
    } else {
      for (int64_t c = 0; c < C; c++) out[c] = k[c] * (dr[c] - m1[c] - (xr[c] - mu[c]) * inv[c] * m2[c]);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void register_batch_norm(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "batchNormForwardTraining", ForwardTraining);
  STRATA_EXPORT(env, exports, "batchNormForwardInference", ForwardInference);
  STRATA_EXPORT(env, exports, "batchNormBackward", Backward);
}

}  // namespace strata
