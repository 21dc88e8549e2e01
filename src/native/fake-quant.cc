// Fake quantization kernels (see QuantKernels in src/engine/backend.ts for the formulas). Divisions
// are done in double precision so the codes equal the TypeScript cascade's bit for bit.
#include <cmath>
#include <algorithm>
#include <cstring>

#include "common.h"

namespace strata {
namespace {

struct WeightGrid {
  int64_t qmin, qmax, shift;
  double offset;
  bool round;
};

WeightGrid weight_grid(const Napi::CallbackInfo& info, int64_t top, int64_t bits, const std::string& rule,
                       const char* op) {
  if (top < 1 || top > 16 || bits < 1 || bits > top) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": expected 1 <= bits <= topBits <= 16");
  }
  if (rule != "floor" && rule != "round") {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": expected 'floor' or 'round' for rule");
  }
  bool round = rule == "round";
  int64_t half = int64_t(1) << (top - 1);
  int64_t k = top - bits;
  return {round ? -half + 1 : -half, round ? half : half - 1, k, round ? -0.5 + std::ldexp(1.0, -(k + 1)) : 0.5, round};
}

inline int64_t round_half_away(double v) { return v < 0 ? -static_cast<int64_t>(std::floor(-v + 0.5)) : static_cast<int64_t>(std::floor(v + 0.5)); }

// The b-bit code of one weight; `clipped` tells whether its top code hit the range edge.
inline int64_t cascade_code(double v, const WeightGrid& g, bool& clipped) {
  double lim = 1e15;  // keeps the integer conversion defined for absurd ratios
  v = v > lim ? lim : (v < -lim ? -lim : v);
  if (v != v) v = 0;  // NaN (a zero scale over a zero weight): converting it to an integer is undefined
  int64_t raw = g.round ? round_half_away(v) : static_cast<int64_t>(std::floor(v));
  int64_t top = raw < g.qmin ? g.qmin : (raw > g.qmax ? g.qmax : raw);
  clipped = raw != top;
  return g.round ? (top + (int64_t(1) << g.shift) - 1) >> g.shift : top >> g.shift;
}

struct WeightArgs {
  FloatArg w, scales;
  int64_t channels, per;
  WeightGrid grid;
};

WeightArgs weight_args(const Napi::CallbackInfo& info, const char* op) {
  size_t n = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0;
  FloatArg w = float_arg(info, 0, op, "w", n);
  int64_t channels = int_value(info, 1, op, "channels");
  if (channels < 1 || n % channels != 0) throw Napi::RangeError::New(info.Env(), std::string(op) + ": channels must divide the weight count");
  FloatArg scales = float_arg(info, 2, op, "scalesTop", channels);
  int64_t top = int_value(info, 3, op, "topBits"), bits = int_value(info, 4, op, "bits");
  if (!info[5].IsString()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected string for rule");
  WeightGrid g = weight_grid(info, top, bits, info[5].As<Napi::String>().Utf8Value(), op);
  return {w, scales, channels, static_cast<int64_t>(n) / channels, g};
}

// fakeQuantWeightForward(w, channels, scalesTop, topBits, bits, rule, out, codes|null)
Napi::Value WeightForward(const Napi::CallbackInfo& info) {
  const char* op = "fakeQuantWeightForward";
  WeightArgs a = weight_args(info, op);
  size_t n = a.w.length;
  FloatArg out = float_arg(info, 6, op, "out", n);
  int32_t* codes = (info[7].IsNull() || info[7].IsUndefined()) ? nullptr : int_arg(info, 7, op, "codes", n);
  double mult = std::ldexp(1.0, static_cast<int>(a.grid.shift));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < a.channels; c++) {
    double s = a.scales.data[c];
    for (int64_t i = c * a.per; i < (c + 1) * a.per; i++) {
      bool clipped;
      int64_t q = cascade_code(static_cast<double>(a.w.data[i]) / s, a.grid, clipped);
      out.data[i] = static_cast<float>((static_cast<double>(q) + a.grid.offset) * s * mult);
      if (codes != nullptr) codes[i] = static_cast<int32_t>(q);
    }
  }
  return info.Env().Undefined();
}

// fakeQuantWeightBackward(w, channels, scalesTop, topBits, bits, rule, dy, dw, dscale)
Napi::Value WeightBackward(const Napi::CallbackInfo& info) {
  const char* op = "fakeQuantWeightBackward";
  WeightArgs a = weight_args(info, op);
  size_t n = a.w.length;
  FloatArg dy = float_arg(info, 6, op, "dy", n), dw = float_arg(info, 7, op, "dw", n);
  FloatArg ds = float_arg(info, 8, op, "dscale", a.channels);
  double mult = std::ldexp(1.0, static_cast<int>(a.grid.shift));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < a.channels; c++) {
    double s = a.scales.data[c], sum = 0;
    for (int64_t i = c * a.per; i < (c + 1) * a.per; i++) {
      double v = static_cast<double>(a.w.data[i]) / s;
      bool clipped;
      int64_t q = cascade_code(v, a.grid, clipped);
      dw.data[i] = clipped ? 0.f : dy.data[i];
      sum += dy.data[i] * (mult * (static_cast<double>(q) + a.grid.offset) - (clipped ? 0.0 : v));
    }
    ds.data[c] = static_cast<float>(sum);
  }
  return info.Env().Undefined();
}

// Activation kernels run over contiguous chunks, each compiled twice (AVX2 and baseline x86-64)
// and picked at load time: they are memory-bound with a rounding in the middle, which only the AVX
// clone does without a function call per element.
constexpr int64_t kChunk = 16384;

__attribute__((target_clones("avx2", "default"))) void act_forward_chunk(const float* x, float* y, int64_t n,
                                                                          float inv, float s, float qmin,
                                                                          float qmax) {
  for (int64_t i = 0; i < n; i++) {
    float q = std::floor(x[i] * inv + 0.5f);
    q = q < qmin ? qmin : (q > qmax ? qmax : q);
    y[i] = q * s;
  }
}

__attribute__((target_clones("avx2", "default"))) float act_backward_chunk(const float* x, const float* dy,
                                                                            float* dx, int64_t n, float inv,
                                                                            float qmin, float qmax) {
  float sum = 0.f;
  const float lo = qmin - 0.5f, hi = qmax + 0.5f;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i] * inv, d = dy[i];
    float q = std::floor(v + 0.5f);
    q = q < qmin ? qmin : (q > qmax ? qmax : q);
    bool inside = (v >= lo) & (v < hi);
    dx[i] = inside ? d : 0.f;
    sum += d * (inside ? q - v : q);
  }
  return sum;
}

// fakeQuantActForward(x, scale, qmin, qmax, y)
Napi::Value ActForward(const Napi::CallbackInfo& info) {
  const char* op = "fakeQuantActForward";
  size_t n = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0;
  FloatArg x = float_arg(info, 0, op, "x", n);
  double s = num_value(info, 1, op, "scale"), qmin = num_value(info, 2, op, "qmin"), qmax = num_value(info, 3, op, "qmax");
  FloatArg y = float_arg(info, 4, op, "y", n);
  if (!(s > 0)) throw Napi::RangeError::New(info.Env(), std::string(op) + ": scale must be positive");
  // float32 throughout, as the reference kernel defines it: v = x * fround(1 / s).
  float sf = static_cast<float>(s), inv = 1.f / sf;
  int64_t N = static_cast<int64_t>(n), chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (N > 32768)
  for (int64_t c = 0; c < chunks; c++) {
    int64_t from = c * kChunk, len = std::min(kChunk, N - from);
    act_forward_chunk(x.data + from, y.data + from, len, inv, sf, static_cast<float>(qmin), static_cast<float>(qmax));
  }
  return info.Env().Undefined();
}

// fakeQuantActBackward(x, scale, qmin, qmax, dy, dx) -> scale gradient
Napi::Value ActBackward(const Napi::CallbackInfo& info) {
  const char* op = "fakeQuantActBackward";
  size_t n = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0;
  FloatArg x = float_arg(info, 0, op, "x", n);
  double s = num_value(info, 1, op, "scale"), qmin = num_value(info, 2, op, "qmin"), qmax = num_value(info, 3, op, "qmax");
  FloatArg dy = float_arg(info, 4, op, "dy", n), dx = float_arg(info, 5, op, "dx", n);
  if (!(s > 0)) throw Napi::RangeError::New(info.Env(), std::string(op) + ": scale must be positive");
  float inv = 1.f / static_cast<float>(s);
  int64_t N = static_cast<int64_t>(n), chunks = (N + kChunk - 1) / kChunk;
  double sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum) if (N > 32768)
  for (int64_t c = 0; c < chunks; c++) {
    int64_t from = c * kChunk, len = std::min(kChunk, N - from);
    sum += act_backward_chunk(x.data + from, dy.data + from, dx.data + from, len, inv, static_cast<float>(qmin),
                              static_cast<float>(qmax));
  }
  return Napi::Number::New(info.Env(), sum);
}

}  // namespace

void register_fake_quant(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "fakeQuantWeightForward", WeightForward);
  STRATA_EXPORT(env, exports, "fakeQuantWeightBackward", WeightBackward);
  STRATA_EXPORT(env, exports, "fakeQuantActForward", ActForward);
  STRATA_EXPORT(env, exports, "fakeQuantActBackward", ActBackward);
}

}  // namespace strata
