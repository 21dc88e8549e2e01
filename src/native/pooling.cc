// Max and average pooling over channels-last images. Max pooling recomputes the arg-max in its
// backward pass from the saved input instead of keeping an index workspace alive between passes.
#include <cfloat>
#include <cstring>

#include "common.h"

namespace strata {
namespace {

struct Pool {
  int64_t batch, inH, inW, C, outH, outW, kH, kW, sH, sW, pH, pW;
  // Element counts, computed once with overflow checks (a wrapped product once let a crafted
  // geometry pass the length checks and index far outside x and y).
  size_t in_count = 0, out_count = 0;
  size_t in_size() const { return in_count; }
  size_t out_size() const { return out_count; }
};

Pool read_pool(const Napi::CallbackInfo& info, const char* op) {
  if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected geometry object");
  Napi::Object g = info[0].As<Napi::Object>();
  Pool p{geom_int(g, "batch", op), geom_int(g, "inH", op),     geom_int(g, "inW", op),     geom_int(g, "channels", op),
         geom_int(g, "outH", op),  geom_int(g, "outW", op),    geom_int(g, "kH", op),      geom_int(g, "kW", op),
         geom_int(g, "strideH", op), geom_int(g, "strideW", op), geom_int(g, "padH", op), geom_int(g, "padW", op)};
  bool ok = p.kH >= 1 && p.kW >= 1 && p.sH >= 1 && p.sW >= 1 && p.outH >= 1 && p.outW >= 1 &&
            (p.outH - 1) * p.sH - p.pH < p.inH && (p.outW - 1) * p.sW - p.pW < p.inW;
  if (!ok) throw Napi::RangeError::New(info.Env(), std::string(op) + ": inconsistent pooling geometry");
  p.in_count = checked_count(info.Env(), op, "x", {p.batch, p.inH, p.inW, p.C});
  p.out_count = checked_count(info.Env(), op, "y", {p.batch, p.outH, p.outW, p.C});
  return p;
}

// Valid window [h0, h1) x [w0, w1) of output cell (oh, ow), clipped to the image.
inline void window(const Pool& p, int64_t oh, int64_t ow, int64_t& h0, int64_t& h1, int64_t& w0, int64_t& w1) {
  h0 = oh * p.sH - p.pH;
  w0 = ow * p.sW - p.pW;
  h1 = std::min(h0 + p.kH, p.inH);
  w1 = std::min(w0 + p.kW, p.inW);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
}

Napi::Value MaxForward(const Napi::CallbackInfo& info) {
  const char* op = "maxPoolForward";
  Pool p = read_pool(info, op);
  FloatArg x = float_arg(info, 1, op, "x", p.in_size()), y = float_arg(info, 2, op, "y", p.out_size());
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.batch; n++)
    for (int64_t oh = 0; oh < p.outH; oh++)
      for (int64_t ow = 0; ow < p.outW; ow++) {
        int64_t h0, h1, w0, w1;
        window(p, oh, ow, h0, h1, w0, w1);
        float* out = y.data + ((n * p.outH + oh) * p.outW + ow) * p.C;
        for (int64_t c = 0; c < p.C; c++) out[c] = -FLT_MAX;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            const float* in = x.data + ((n * p.inH + h) * p.inW + w) * p.C;
            for (int64_t c = 0; c < p.C; c++) out[c] = in[c] > out[c] ? in[c] : out[c];
          }
      }
  return info.Env().Undefined();
}

Napi::Value MaxBackward(const Napi::CallbackInfo& info) {
  const char* op = "maxPoolBackward";
  Pool p = read_pool(info, op);
  FloatArg x = float_arg(info, 1, op, "x", p.in_size()), dy = float_arg(info, 2, op, "dy", p.out_size());
  FloatArg dx = float_arg(info, 3, op, "dx", p.in_size());
  std::memset(dx.data, 0, p.in_size() * sizeof(float));
  // Images are independent, so parallelising over the batch keeps the scatter race-free.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < p.batch; n++)
    for (int64_t oh = 0; oh < p.outH; oh++)
      for (int64_t ow = 0; ow < p.outW; ow++) {
        int64_t h0, h1, w0, w1;
        window(p, oh, ow, h0, h1, w0, w1);
        const float* g = dy.data + ((n * p.outH + oh) * p.outW + ow) * p.C;
        for (int64_t c = 0; c < p.C; c++) {
          // The first maximum in window order receives the gradient, as in the reference backend.
          float best = -FLT_MAX;
          int64_t at = -1;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) {
              int64_t idx = ((n * p.inH + h) * p.inW + w) * p.C + c;
              if (at < 0 || x.data[idx] > best) {
                best = x.data[idx];
                at = idx;
              }
            }
          if (at >= 0) dx.data[at] += g[c];
        }
      }
  return info.Env().Undefined();
}

Napi::Value AvgForward(const Napi::CallbackInfo& info) {
  const char* op = "avgPoolForward";
  Pool p = read_pool(info, op);
  FloatArg x = float_arg(info, 1, op, "x", p.in_size()), y = float_arg(info, 2, op, "y", p.out_size());
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < p.batch; n++)
    for (int64_t oh = 0; oh < p.outH; oh++)
      for (int64_t ow = 0; ow < p.outW; ow++) {
        int64_t h0, h1, w0, w1;
        window(p, oh, ow, h0, h1, w0, w1);
        float* out = y.data + ((n * p.outH + oh) * p.outW + ow) * p.C;
        for (int64_t c = 0; c < p.C; c++) out[c] = 0.f;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            const float* in = x.data + ((n * p.inH + h) * p.inW + w) * p.C;
            for (int64_t c = 0; c < p.C; c++) out[c] += in[c];
          }
        float inv = 1.f / static_cast<float>(std::max<int64_t>(1, (h1 - h0) * (w1 - w0)));
        for (int64_t c = 0; c < p.C; c++) out[c] *= inv;
      }
  return info.Env().Undefined();
}

Napi::Value AvgBackward(const Napi::CallbackInfo& info) {
  const char* op = "avgPoolBackward";
  Pool p = read_pool(info, op);
  FloatArg dy = float_arg(info, 1, op, "dy", p.out_size()), dx = float_arg(info, 2, op, "dx", p.in_size());
  std::memset(dx.data, 0, p.in_size() * sizeof(float));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < p.batch; n++)
    for (int64_t oh = 0; oh < p.outH; oh++)
      for (int64_t ow = 0; ow < p.outW; ow++) {
        int64_t h0, h1, w0, w1;
        window(p, oh, ow, h0, h1, w0, w1);
        float inv = 1.f / static_cast<float>(std::max<int64_t>(1, (h1 - h0) * (w1 - w0)));
        const float* g = dy.data + ((n * p.outH + oh) * p.outW + ow) * p.C;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) {
            float* out = dx.data + ((n * p.inH + h) * p.inW + w) * p.C;
            for (int64_t c = 0; c < p.C; c++) out[c] += g[c] * inv;
          }
      }
  return info.Env().Undefined();
}

}  // namespace

void register_pooling(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "maxPoolForward", MaxForward);
  STRATA_EXPORT(env, exports, "maxPoolBackward", MaxBackward);
  STRATA_EXPORT(env, exports, "avgPoolForward", AvgForward);
  STRATA_EXPORT(env, exports, "avgPoolBackward", AvgBackward);
}

}  // namespace strata
