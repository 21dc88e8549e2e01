// Memory-bound element-wise kernels, the softmax cross-entropy loss and the SGD update.
#include <cmath>

#include "common.h"

namespace strata {
namespace {

constexpr int64_t kParallelMin = 1 << 15;  // below this, thread start-up costs more than it saves

size_t length_of(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected Float32Array for " + name);
  }
  return v.As<Napi::Float32Array>().ElementLength();
}

// reluForward(x, cap, y)
Napi::Value ReluForward(const Napi::CallbackInfo& info) {
  const char* op = "reluForward";
  size_t n = length_of(info, 0, op, "x");
  FloatArg x = float_arg(info, 0, op, "x", n), y = float_arg(info, 2, op, "y", n);
  float cap = static_cast<float>(num_value(info, 1, op, "cap"));
  int64_t N = static_cast<int64_t>(n);
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    float v = x.data[i] > 0.f ? x.data[i] : 0.f;
    y.data[i] = v < cap ? v : cap;
  }
  return info.Env().Undefined();
}

// reluBackward(y, dy, cap, dx)
Napi::Value ReluBackward(const Napi::CallbackInfo& info) {
  const char* op = "reluBackward";
  size_t n = length_of(info, 0, op, "y");
  FloatArg y = float_arg(info, 0, op, "y", n), dy = float_arg(info, 1, op, "dy", n), dx = float_arg(info, 3, op, "dx", n);
  float cap = static_cast<float>(num_value(info, 2, op, "cap"));
  int64_t N = static_cast<int64_t>(n);
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
  for (int64_t i = 0; i < N; i++) {
    // Unconditional loads and a non-short-circuit test keep this a vectorised select.
    float yv = y.data[i], d = dy.data[i];
    dx.data[i] = ((yv > 0.f) & (yv < cap)) ? d : 0.f;
  }
  return info.Env().Undefined();
}

template <typename F>
Napi::Value binary(const Napi::CallbackInfo& info, const char* op, F f) {
  size_t n = length_of(info, 2, op, "out");
  FloatArg a = float_arg(info, 0, op, "a", n), b = float_arg(info, 1, op, "b", n), out = float_arg(info, 2, op, "out", n);
  int64_t N = static_cast<int64_t>(n);
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
  for (int64_t i = 0; i < N; i++) out.data[i] = f(a.data[i], b.data[i]);
  return info.Env().Undefined();
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  return binary(info, "add", [](float a, float b) { return a + b; });
}

Napi::Value Mul(const Napi::CallbackInfo& info) {
  return binary(info, "mul", [](float a, float b) { return a * b; });
}

// axpy(a, alpha, b, out): out = a + alpha * b
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  const char* op = "axpy";
  size_t n = length_of(info, 3, op, "out");
  FloatArg a = float_arg(info, 0, op, "a", n), b = float_arg(info, 2, op, "b", n), out = float_arg(info, 3, op, "out", n);
  float alpha = static_cast<float>(num_value(info, 1, op, "alpha"));
  int64_t N = static_cast<int64_t>(n);
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
  for (int64_t i = 0; i < N; i++) out.data[i] = a.data[i] + alpha * b.data[i];
  return info.Env().Undefined();
}

// softmaxCrossEntropyForward(rows, classes, logits, labels, smoothing, probs) -> mean loss
Napi::Value SoftmaxXentForward(const Napi::CallbackInfo& info) {
  const char* op = "softmaxCrossEntropyForward";
  int64_t R = int_value(info, 0, op, "rows"), K = int_value(info, 1, op, "classes");
  size_t RK = checked_count(info.Env(), op, "logits", {R, K});
  if (R < 1 || K < 1) throw Napi::RangeError::New(info.Env(), std::string(op) + ": needs at least one row and one class");
  FloatArg logits = float_arg(info, 2, op, "logits", RK);
  int32_t* labels = int_arg(info, 3, op, "labels", static_cast<size_t>(R));
  double s = num_value(info, 4, op, "smoothing");
  FloatArg probs = float_arg(info, 5, op, "probs", RK);
  for (int64_t r = 0; r < R; r++) {
    if (labels[r] < 0 || labels[r] >= K) {
      throw Napi::RangeError::New(info.Env(), std::string(op) + ": label " + std::to_string(labels[r]) + " at row " +
                                                  std::to_string(r) + " is outside [0, " + std::to_string(K) + ")");
    }
  }
  double total = 0;
  for (int64_t r = 0; r < R; r++) {
    const float* z = logits.data + r * K;
    float* p = probs.data + r * K;
    double mx = z[0];
    for (int64_t k = 1; k < K; k++) mx = std::max(mx, static_cast<double>(z[k]));
    double sum = 0;
    for (int64_t k = 0; k < K; k++) sum += std::exp(z[k] - mx);
    double lse = mx + std::log(sum);
    double loss = 0;
    for (int64_t k = 0; k < K; k++) {
      double logp = z[k] - lse;
      p[k] = static_cast<float>(std::exp(logp));
      double target = (k == labels[r] ? 1.0 - s : 0.0) + s / K;
      loss -= target * logp;
    }
    total += loss;
  }
  return Napi::Number::New(info.Env(), total / R);
}

// softmaxCrossEntropyBackward(rows, classes, probs, labels, smoothing, scale, dlogits)
Napi::Value SoftmaxXentBackward(const Napi::CallbackInfo& info) {
  const char* op = "softmaxCrossEntropyBackward";
  int64_t R = int_value(info, 0, op, "rows"), K = int_value(info, 1, op, "classes");
  size_t RK = checked_count(info.Env(), op, "probs", {R, K});
  FloatArg probs = float_arg(info, 2, op, "probs", RK);
  int32_t* labels = int_arg(info, 3, op, "labels", static_cast<size_t>(R));
  double s = num_value(info, 4, op, "smoothing"), scale = num_value(info, 5, op, "scale");
  FloatArg d = float_arg(info, 6, op, "dlogits", RK);
  for (int64_t r = 0; r < R; r++) {
    if (labels[r] < 0 || labels[r] >= K) throw Napi::RangeError::New(info.Env(), std::string(op) + ": label out of range");
    for (int64_t k = 0; k < K; k++) {
      double target = (k == labels[r] ? 1.0 - s : 0.0) + s / K;
      d.data[r * K + k] = static_cast<float>(scale * (probs.data[r * K + k] - target) / R);
    }
  }
  return info.Env().Undefined();
}

// sgdStep(param, grad, velocity|null, lr, momentum, weightDecay, nesterov)
Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  const char* op = "sgdStep";
  size_t n = length_of(info, 0, op, "param");
  FloatArg p = float_arg(info, 0, op, "param", n), g = float_arg(info, 1, op, "grad", n);
  FloatArg v = float_arg(info, 2, op, "velocity", n, true);
  float lr = static_cast<float>(num_value(info, 3, op, "lr")), mom = static_cast<float>(num_value(info, 4, op, "momentum"));
  float wd = static_cast<float>(num_value(info, 5, op, "weightDecay"));
  bool nesterov = info[6].ToBoolean();
  int64_t N = static_cast<int64_t>(n);
  if (v.data == nullptr) {
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
    for (int64_t i = 0; i < N; i++) p.data[i] -= lr * (g.data[i] + wd * p.data[i]);
  } else {
#pragma omp parallel for simd schedule(static) if (N > kParallelMin)
    for (int64_t i = 0; i < N; i++) {
      float gi = g.data[i] + wd * p.data[i];
      float vi = mom * v.data[i] + gi;
      v.data[i] = vi;
      p.data[i] -= lr * (nesterov ? gi + mom * vi : vi);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "reluForward", ReluForward);
  STRATA_EXPORT(env, exports, "reluBackward", ReluBackward);
  STRATA_EXPORT(env, exports, "add", Add);
  STRATA_EXPORT(env, exports, "mul", Mul);
  STRATA_EXPORT(env, exports, "axpy", Axpy);
  STRATA_EXPORT(env, exports, "softmaxCrossEntropyForward", SoftmaxXentForward);
  STRATA_EXPORT(env, exports, "softmaxCrossEntropyBackward", SoftmaxXentBackward);
  STRATA_EXPORT(env, exports, "sgdStep", SgdStep);
}

}  // namespace strata
