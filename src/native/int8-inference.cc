// Integer inference for deployed models: oneDNN int8 convolution and inner product (forward_inference),
// u8/s8 activation codes times s8 weight codes accumulated in s32, then per-channel output scales, a
// per-channel bias (binary post-op) and ReLU (eltwise post-op) into f32. A layer is prepared once
// (int8LayerCreate: its codes and epilogue are copied and reordered into the kernel's layout per
// batch size) and run many times (int8LayerRun). A layer may add a residual (a residual block's
// shortcut) before its ReLU, as a second binary post-op. When the layer needs the 8-bit offset correction
// y += corrScale[c] * S (S = sum of the input codes over the receptive field), the weights get one
// extra output channel of ones whose scale is 1, and a short loop applies the correction, bias and
// ReLU. quantizeCodes rounds float activations to codes exactly as Strata's fake quantizer does.
//
// Every argument is validated here with overflow-checked sizes, and every C++ exception becomes a JS
// error through common.h's guard (registered with STRATA_EXPORT, like every entry point).
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "common.h"

namespace strata {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// a * b, or a RangeError when it overflows size_t (or the JS-safe integer range).
size_t checked_mul(Napi::Env env, const char* op, size_t a, size_t b) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r) || r > (size_t{1} << 53)) {
    throw Napi::RangeError::New(env, std::string(op) + ": tensor size overflows");
  }
  return r;
}

int64_t bounded_int(Napi::Env env, const Napi::Object& o, const char* key, const char* op, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(op) + ": expected number for " + key);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d)) {
    throw Napi::RangeError::New(env, std::string(op) + ": expected integer in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "] for " + key);
  }
  return static_cast<int64_t>(d);
}

const std::vector<float> float_vector(Napi::Env env, Napi::Value v, const char* op, const char* name, size_t n) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(env, std::string(op) + ": expected Float32Array for " + name);
  }
  auto a = v.As<Napi::Float32Array>();
  if (a.ElementLength() != n) {
    throw Napi::RangeError::New(env, std::string(op) + ": expected " + std::to_string(n) + " values for " + name +
                                         " but received " + std::to_string(a.ElementLength()));
  }
  std::vector<float> out(a.Data(), a.Data() + n);
  for (float f : out) {
    if (!std::isfinite(f)) throw Napi::RangeError::New(env, std::string(op) + ": " + name + " holds a non-finite value");
  }
  return out;
}

struct Entry {
  dnnl::primitive prim;
  memory weights;
  memory bias;       // {1, O} or {1, O, 1, 1}, for the binary post-op (fused epilogue only)
  memory::desc src_md, dst_md;
  std::vector<float> wide;  // dst with the extra ones channel (correction) or before the epilogue loop
  bool fused = false;       // bias and ReLU run as post-ops straight into the user's dst
  int64_t outH = 1, outW = 1;
};

struct Int8Layer {
  bool conv = true, src_signed = false, relu = false, corr = false, residual = false;
  int64_t inC = 0, outC = 0, kH = 1, kW = 1, sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1, groups = 1;
  std::vector<int8_t> weights;  // user layout, [O(+1), I/groups, kH, kW] or [O(+1), I]
  std::vector<float> scale, corr_scale, bias;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<Entry>> entries;

  int64_t wide_c() const { return corr ? outC + 1 : outC; }
};

Entry& entry_for(Int8Layer& L, int64_t batch, int64_t inH, int64_t inW) {
  auto key = std::make_tuple(batch, inH, inW);
  auto found = L.entries.find(key);
  if (found != L.entries.end()) return *found->second;
  auto& eng = cpu_engine();
  auto e = std::make_unique<Entry>();
  const int64_t O = L.wide_c();
  const dt src_dt = L.src_signed ? dt::s8 : dt::u8;
  memory::desc user_w_md, any_w_md;
  if (L.conv) {
    e->outH = (inH + 2 * L.pH - L.dH * (L.kH - 1) - 1) / L.sH + 1;
    e->outW = (inW + 2 * L.pW - L.dW * (L.kW - 1) - 1) / L.sW + 1;
    if (e->outH < 1 || e->outW < 1) throw std::runtime_error("input is too small for the kernel");
    e->src_md = memory::desc({batch, L.inC, inH, inW}, src_dt, tag::nhwc);
    e->dst_md = memory::desc({batch, O, e->outH, e->outW}, dt::f32, tag::nhwc);
    if (L.groups == 1) {
      user_w_md = memory::desc({O, L.inC, L.kH, L.kW}, dt::s8, tag::oihw);
      any_w_md = memory::desc({O, L.inC, L.kH, L.kW}, dt::s8, tag::any);
    } else {
      memory::dims wd{L.groups, O / L.groups, L.inC / L.groups, L.kH, L.kW};
      user_w_md = memory::desc(wd, dt::s8, tag::goihw);
      any_w_md = memory::desc(wd, dt::s8, tag::any);
    }
  } else {
    e->src_md = memory::desc({batch, L.inC}, src_dt, tag::nc);
    e->dst_md = memory::desc({batch, O}, dt::f32, tag::nc);
    user_w_md = memory::desc({O, L.inC}, dt::s8, tag::oi);
    any_w_md = memory::desc({O, L.inC}, dt::s8, tag::any);
  }
  std::vector<float> scales(L.scale);
  if (L.corr) scales.push_back(1.f);
  memory::desc bias_md = L.conv ? memory::desc({1, O, 1, 1}, dt::f32, tag::abcd) : memory::desc({1, O}, dt::f32, tag::ab);

  auto make_pd = [&](bool fused) {
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, scales);
    if (fused) {
      dnnl::post_ops po;
      po.append_binary(dnnl::algorithm::binary_add, bias_md);
      if (L.residual) po.append_binary(dnnl::algorithm::binary_add, e->dst_md);
      if (L.relu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    if (L.conv) {
      memory::dims strides{L.sH, L.sW}, dilates{L.dH - 1, L.dW - 1}, pad_l{L.pH, L.pW};
      memory::dims pad_r{(e->outH - 1) * L.sH + (L.kH - 1) * L.dH + 1 - inH - L.pH,
                         (e->outW - 1) * L.sW + (L.kW - 1) * L.dW + 1 - inW - L.pW};
      auto d = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                               e->src_md, any_w_md, e->dst_md, strides, dilates, pad_l, pad_r);
      auto pd = dnnl::convolution_forward::primitive_desc(d, attr, eng);
      return std::make_pair(dnnl::primitive(dnnl::convolution_forward(pd)), pd.weights_desc());
    }
    auto d = dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference, e->src_md, any_w_md, e->dst_md);
    auto pd = dnnl::inner_product_forward::primitive_desc(d, attr, eng);
    return std::make_pair(dnnl::primitive(dnnl::inner_product_forward(pd)), pd.weights_desc());
  };
  std::pair<dnnl::primitive, memory::desc> made;
  e->fused = !L.corr;
  if (e->fused) {
    try {
      made = make_pd(true);
    } catch (const dnnl::error&) {
      e->fused = false;  // no implementation with these post-ops here: the epilogue loop does it
    }
  }
  if (!e->fused) made = make_pd(false);
  e->prim = made.first;
  memory user_w(user_w_md, eng, L.weights.data());
  e->weights = memory(made.second, eng);
  dnnl::reorder(user_w, e->weights).execute(cpu_stream(), user_w, e->weights);
  if (e->fused) {
    e->bias = memory(bias_md, eng);
    std::copy(L.bias.begin(), L.bias.end(), static_cast<float*>(e->bias.get_data_handle()));
  } else {
    e->wide.resize(static_cast<size_t>(batch * e->outH * e->outW * O));
  }
  cpu_stream().wait();
  Entry& ref = *e;
  L.entries.emplace(key, std::move(e));
  return ref;
}

void run(Int8Layer& L, int64_t batch, int64_t inH, int64_t inW, void* src, float* dst, float* residual) {
  Entry& e = entry_for(L, batch, inH, inW);
  auto& eng = cpu_engine();
  memory src_m(e.src_md, eng, src);
  memory dst_m(e.dst_md, eng, e.fused ? static_cast<void*>(dst) : static_cast<void*>(e.wide.data()));
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, e.weights}, {DNNL_ARG_DST, dst_m}};
  if (e.fused) args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, e.bias});
  if (e.fused && L.residual) {
    args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(1) | DNNL_ARG_SRC_1, memory(e.dst_md, eng, residual)});
  }
  e.prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  if (e.fused) return;
  const int64_t O = L.outC, W = L.wide_c();
  const int64_t pixels = batch * e.outH * e.outW;
  const float* wide = e.wide.data();
  const bool corr = L.corr, relu = L.relu;
  const float* cs = L.corr_scale.data();
  const float* b = L.bias.data();
  const float* res = residual;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pixels; p++) {
    const float* row = wide + p * W;
    float* out = dst + p * O;
    const float s = corr ? row[O] : 0.f;
    for (int64_t c = 0; c < O; c++) {
      float v = row[c];
      if (corr) v += cs[c] * s;
      v += b[c];
      if (res != nullptr) v += res[p * O + c];
      out[c] = relu && v < 0.f ? 0.f : v;
    }
  }
}

// int8LayerCreate(spec, weights: Int8Array, scale, corrScale | null, bias) -> handle
// spec: { kind: 'conv' | 'linear', inC, outC, srcSigned, relu, [conv:] kH, kW, strideH, strideW, padH, padW,
//         dilationH, dilationW, groups }
Napi::Value Create(const Napi::CallbackInfo& info) {
  const char* op = "int8LayerCreate";
  Napi::Env env = info.Env();
  return guarded(info, op, [&]() -> Napi::Value {
    if (info.Length() != 5) throw Napi::TypeError::New(env, std::string(op) + ": expected 5 arguments");
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, std::string(op) + ": expected object for spec");
    Napi::Object spec = info[0].As<Napi::Object>();
    auto L = std::make_unique<Int8Layer>();
    Napi::Value kind = spec.Get("kind");
    if (!kind.IsString()) throw Napi::TypeError::New(env, std::string(op) + ": expected 'conv' or 'linear' for kind");
    std::string k = kind.As<Napi::String>().Utf8Value();
    if (k != "conv" && k != "linear") throw Napi::RangeError::New(env, std::string(op) + ": expected 'conv' or 'linear' for kind");
    L->conv = k == "conv";
    const int64_t big = int64_t{1} << 24;
    L->inC = bounded_int(env, spec, "inC", op, 1, big);
    L->outC = bounded_int(env, spec, "outC", op, 1, big);
    L->src_signed = spec.Get("srcSigned").ToBoolean().Value();
    L->relu = spec.Get("relu").ToBoolean().Value();
    L->residual = spec.Get("residual").ToBoolean().Value();
    if (L->conv) {
      L->kH = bounded_int(env, spec, "kH", op, 1, 1024);
      L->kW = bounded_int(env, spec, "kW", op, 1, 1024);
      L->sH = bounded_int(env, spec, "strideH", op, 1, 1024);
      L->sW = bounded_int(env, spec, "strideW", op, 1, 1024);
      L->pH = bounded_int(env, spec, "padH", op, 0, 1024);
      L->pW = bounded_int(env, spec, "padW", op, 0, 1024);
      L->dH = bounded_int(env, spec, "dilationH", op, 1, 1024);
      L->dW = bounded_int(env, spec, "dilationW", op, 1, 1024);
      L->groups = bounded_int(env, spec, "groups", op, 1, big);
      if (L->inC % L->groups != 0 || L->outC % L->groups != 0) {
        throw Napi::RangeError::New(env, std::string(op) + ": groups must divide inC and outC");
      }
    }
    L->corr = !info[3].IsNull() && !info[3].IsUndefined();
    if (L->corr && L->groups != 1) {
      throw Napi::RangeError::New(env, std::string(op) + ": the offset correction needs groups = 1");
    }
    const size_t O = static_cast<size_t>(L->outC);
    size_t per = checked_mul(env, op, static_cast<size_t>(L->inC / L->groups), static_cast<size_t>(L->kH));
    per = checked_mul(env, op, per, static_cast<size_t>(L->kW));
    const size_t n = checked_mul(env, op, per, O);
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int8_array) {
      throw Napi::TypeError::New(env, std::string(op) + ": expected Int8Array for weights");
    }
    auto w = info[1].As<Napi::Int8Array>();
    if (w.ElementLength() != n) {
      throw Napi::RangeError::New(env, std::string(op) + ": expected " + std::to_string(n) +
                                           " weight codes but received " + std::to_string(w.ElementLength()));
    }
    L->scale = float_vector(env, info[2], op, "scale", O);
    if (L->corr) L->corr_scale = float_vector(env, info[3], op, "corrScale", O);
    L->bias = float_vector(env, info[4], op, "bias", O);
    L->weights.assign(w.Data(), w.Data() + n);
    if (L->corr) L->weights.resize(checked_mul(env, op, per, O + 1), 1);  // the ones channel: S
    Int8Layer* raw = L.release();
    return Napi::External<Int8Layer>::New(env, raw, [](Napi::Env, Int8Layer* p) { delete p; });
  });
}

// int8LayerRun(handle, batch, inH, inW, src: Uint8Array | Int8Array, dst: Float32Array, residual: Float32Array | null)
// src is channels-last [batch, inH, inW, inC] (linear: [batch, inC] with inH = inW = 1); residual, like dst,
// is added before the ReLU by a layer created with residual: true.
Napi::Value Run(const Napi::CallbackInfo& info) {
  const char* op = "int8LayerRun";
  Napi::Env env = info.Env();
  return guarded(info, op, [&]() -> Napi::Value {
    if (info.Length() != 7) throw Napi::TypeError::New(env, std::string(op) + ": expected 7 arguments");
    if (!info[0].IsExternal()) throw Napi::TypeError::New(env, std::string(op) + ": expected a layer from int8LayerCreate");
    Int8Layer& L = *info[0].As<Napi::External<Int8Layer>>().Data();
    Napi::Object dims = Napi::Object::New(env);
    dims.Set("batch", info[1]);
    dims.Set("inH", info[2]);
    dims.Set("inW", info[3]);
    const int64_t batch = bounded_int(env, dims, "batch", op, 1, int64_t{1} << 31);
    const int64_t inH = bounded_int(env, dims, "inH", op, 1, int64_t{1} << 24);
    const int64_t inW = bounded_int(env, dims, "inW", op, 1, int64_t{1} << 24);
    if (!L.conv && (inH != 1 || inW != 1)) throw Napi::RangeError::New(env, std::string(op) + ": a linear layer takes inH = inW = 1");
    size_t in_n = checked_mul(env, op, static_cast<size_t>(batch), static_cast<size_t>(inH));
    in_n = checked_mul(env, op, in_n, static_cast<size_t>(inW));
    in_n = checked_mul(env, op, in_n, static_cast<size_t>(L.inC));
    auto want = L.src_signed ? napi_int8_array : napi_uint8_array;
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != want) {
      throw Napi::TypeError::New(env, std::string(op) + (L.src_signed ? ": expected Int8Array for src" : ": expected Uint8Array for src"));
    }
    auto src = info[4].As<Napi::TypedArray>();
    if (src.ElementLength() != in_n) {
      throw Napi::RangeError::New(env, std::string(op) + ": expected " + std::to_string(in_n) + " codes for src but received " +
                                           std::to_string(src.ElementLength()));
    }
    int64_t outH = 1, outW = 1;
    if (L.conv) {
      outH = (inH + 2 * L.pH - L.dH * (L.kH - 1) - 1) / L.sH + 1;
      outW = (inW + 2 * L.pW - L.dW * (L.kW - 1) - 1) / L.sW + 1;
      if (inH + 2 * L.pH < L.dH * (L.kH - 1) + 1 || inW + 2 * L.pW < L.dW * (L.kW - 1) + 1) {
        throw Napi::RangeError::New(env, std::string(op) + ": input is too small for the kernel");
      }
    }
    size_t out_n = checked_mul(env, op, static_cast<size_t>(batch), static_cast<size_t>(outH));
    out_n = checked_mul(env, op, out_n, static_cast<size_t>(outW));
    checked_mul(env, op, out_n, static_cast<size_t>(L.wide_c()));
    out_n = checked_mul(env, op, out_n, static_cast<size_t>(L.outC));
    FloatArg dst = float_arg(info, 5, op, "dst", 0);
    if (dst.length != out_n) {
      throw Napi::RangeError::New(env, std::string(op) + ": expected " + std::to_string(out_n) + " floats for dst but received " +
                                           std::to_string(dst.length));
    }
    float* residual = nullptr;
    if (info[6].IsNull() || info[6].IsUndefined()) {
      if (L.residual) throw Napi::RangeError::New(env, std::string(op) + ": this layer needs a residual");
    } else {
      if (!L.residual) throw Napi::RangeError::New(env, std::string(op) + ": this layer takes no residual (pass null)");
      FloatArg r = float_arg(info, 6, op, "residual", 0);
      if (r.length != out_n) {
        throw Napi::RangeError::New(env, std::string(op) + ": expected " + std::to_string(out_n) +
                                             " floats for residual but received " + std::to_string(r.length));
      }
      residual = r.data;
    }
    void* src_ptr = static_cast<uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    run(L, batch, inH, inW, src_ptr, dst.data, residual);
    return env.Undefined();
  });
}

// floor(x * inv + 1/2) clamped to [qmin, qmax] (NaN to qmin), written so that it vectorizes on
// baseline x86-64: clamp first (so the int conversion cannot overflow), truncate, then step down
// where truncation rounded a negative value up.
template <typename T>
void quantize(const float* x, T* out, int64_t n, float inv, double qmin, double qmax) {
  const float lo = static_cast<float>(qmin), hi = static_cast<float>(qmax);
  const float top = hi + 1.f;
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i] * inv + 0.5f;
    v = v > lo ? v : lo;
    v = v < top ? v : hi;
    int32_t t = static_cast<int32_t>(v);
    t -= static_cast<float>(t) > v ? 1 : 0;
    out[i] = static_cast<T>(t);
  }
}

// quantizeCodes(x: Float32Array, scale, qmin, qmax, out: Uint8Array | Int8Array):
// out = clamp(floor(x * fround(1 / scale) + 1/2), qmin, qmax), Strata's activation rounding (NaN: qmin).
Napi::Value QuantizeCodes(const Napi::CallbackInfo& info) {
  const char* op = "quantizeCodes";
  Napi::Env env = info.Env();
  return guarded(info, op, [&]() -> Napi::Value {
    if (info.Length() != 5) throw Napi::TypeError::New(env, std::string(op) + ": expected 5 arguments");
    FloatArg x = float_arg(info, 0, op, "x", 0);
    double scale = num_value(info, 1, op, "scale");
    if (!(scale > 0) || !std::isfinite(scale)) throw Napi::RangeError::New(env, std::string(op) + ": expected positive finite scale");
    double qmin = num_value(info, 2, op, "qmin"), qmax = num_value(info, 3, op, "qmax");
    if (!info[4].IsTypedArray()) throw Napi::TypeError::New(env, std::string(op) + ": expected Uint8Array or Int8Array for out");
    auto out = info[4].As<Napi::TypedArray>();
    const bool is_signed = out.TypedArrayType() == napi_int8_array;
    if (!is_signed && out.TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, std::string(op) + ": expected Uint8Array or Int8Array for out");
    }
    const double lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    if (!(qmin >= lo && qmax <= hi && qmin <= qmax) || qmin != std::floor(qmin) || qmax != std::floor(qmax)) {
      throw Napi::RangeError::New(env, std::string(op) + ": expected integer qmin <= qmax within the code type");
    }
    if (out.ElementLength() != x.length) {
      throw Napi::RangeError::New(env, std::string(op) + ": out must have as many elements as x");
    }
    const float inv = 1.f / static_cast<float>(scale);
    void* base = static_cast<uint8_t*>(out.ArrayBuffer().Data()) + out.ByteOffset();
    if (is_signed) quantize(x.data, static_cast<int8_t*>(base), static_cast<int64_t>(x.length), inv, qmin, qmax);
    else quantize(x.data, static_cast<uint8_t*>(base), static_cast<int64_t>(x.length), inv, qmin, qmax);
    return env.Undefined();
  });
}

}  // namespace

void register_int8_inference(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "int8LayerCreate", Create);
  STRATA_EXPORT(env, exports, "int8LayerRun", Run);
  STRATA_EXPORT(env, exports, "quantizeCodes", QuantizeCodes);
}

}  // namespace strata
