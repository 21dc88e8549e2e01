// 2-D convolution over oneDNN: channels-last activations, OIHW weights (grouped: GOIHW).
// Each geometry gets one cache entry holding its primitives and the reorders between the user's
// weight layout and the blocked layout the kernels prefer, so no primitive is created on the hot path.
#include <map>
#include <memory>
#include <tuple>

#include "common.h"

namespace strata {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Geometry {
  int64_t batch, inH, inW, inC, outH, outW, outC, kH, kW, strideH, strideW, padH, padW, dilH, dilW, groups;
  bool bias;
  auto key() const {
    return std::make_tuple(batch, inH, inW, inC, outH, outW, outC, kH, kW, strideH, strideW, padH, padW, dilH, dilW,
                           groups, bias);
  }
  bool operator<(const Geometry& o) const { return key() < o.key(); }
  // Element counts, computed with overflow checks by read_geometry.
  size_t in_count = 0, out_count = 0, weight_count = 0;
  size_t in_size() const { return in_count; }
  size_t out_size() const { return out_count; }
  size_t weight_size() const { return weight_count; }
};

Geometry read_geometry(const Napi::CallbackInfo& info, const char* op, bool bias) {
  if (!info[0].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected geometry object");
  Napi::Object g = info[0].As<Napi::Object>();
  Geometry r{geom_int(g, "batch", op),   geom_int(g, "inH", op),       geom_int(g, "inW", op),
             geom_int(g, "inC", op),     geom_int(g, "outH", op),      geom_int(g, "outW", op),
             geom_int(g, "outC", op),    geom_int(g, "kH", op),        geom_int(g, "kW", op),
             geom_int(g, "strideH", op), geom_int(g, "strideW", op),   geom_int(g, "padH", op),
             geom_int(g, "padW", op),    geom_int(g, "dilationH", op), geom_int(g, "dilationW", op),
             geom_int(g, "groups", op),  bias};
  bool ok = r.groups >= 1 && r.inC % r.groups == 0 && r.outC % r.groups == 0 && r.strideH >= 1 && r.strideW >= 1 &&
            r.dilH >= 1 && r.dilW >= 1 && r.kH >= 1 && r.kW >= 1 && r.batch >= 1 &&
            r.outH == (r.inH + 2 * r.padH - r.dilH * (r.kH - 1) - 1) / r.strideH + 1 &&
            r.outW == (r.inW + 2 * r.padW - r.dilW * (r.kW - 1) - 1) / r.strideW + 1 && r.outH >= 1 && r.outW >= 1;
  if (!ok) throw Napi::RangeError::New(info.Env(), std::string(op) + ": inconsistent convolution geometry");
  r.in_count = checked_count(info.Env(), op, "x", {r.batch, r.inH, r.inW, r.inC});
  r.out_count = checked_count(info.Env(), op, "y", {r.batch, r.outH, r.outW, r.outC});
  r.weight_count = checked_count(info.Env(), op, "w", {r.outC, r.inC / r.groups, r.kH, r.kW});
  return r;
}

struct ConvEntry {
  memory::desc src_md, dst_md, user_w_md, bias_md;
  memory::dims strides, dilates, pad_l, pad_r;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  memory fwd_w;  // weights in the forward kernel's layout
  dnnl::reorder to_fwd_w;
  bool fwd_w_is_user = false;

  bool bwd_data_ready = false;
  dnnl::convolution_backward_data::primitive_desc bd_pd;
  dnnl::convolution_backward_data bd;
  memory bd_w;
  dnnl::reorder to_bd_w;
  bool bd_w_is_user = false;

  bool bwd_weights_ready = false;
  dnnl::convolution_backward_weights::primitive_desc bw_pd;
  dnnl::convolution_backward_weights bw;
  memory bw_dw;
  dnnl::reorder from_bw_dw;
  bool bw_dw_is_user = false;
};

// At most this many geometries keep their primitives (a training run uses a few dozen); beyond it the
// least recently used entry is dropped, so a caller cycling through shapes cannot grow memory without
// bound.
constexpr size_t kCacheLimit = 256;

struct Cached {
  std::unique_ptr<ConvEntry> entry;
  uint64_t used = 0;
};

struct Cache {
  std::map<Geometry, Cached> entries;
  uint64_t clock = 0;
};

// One cache per thread, like the stream its primitives execute on.
Cache& cache() {
  thread_local Cache c;
  return c;
}

ConvEntry& entry_for(const Geometry& g) {
  Cache& c = cache();
  auto& entries = c.entries;
  auto found = entries.find(g);
  if (found != entries.end()) {
    found->second.used = ++c.clock;
    return *found->second.entry;
  }
  if (entries.size() >= kCacheLimit) {
    auto oldest = entries.begin();
    for (auto it = entries.begin(); it != entries.end(); ++it)
      if (it->second.used < oldest->second.used) oldest = it;
    entries.erase(oldest);
  }

  auto& eng = cpu_engine();
  auto e = std::make_unique<ConvEntry>();
  e->src_md = memory::desc({g.batch, g.inC, g.inH, g.inW}, dt::f32, tag::nhwc);
  e->dst_md = memory::desc({g.batch, g.outC, g.outH, g.outW}, dt::f32, tag::nhwc);
  memory::desc any_w;
  if (g.groups == 1) {
    e->user_w_md = memory::desc({g.outC, g.inC, g.kH, g.kW}, dt::f32, tag::oihw);
    any_w = memory::desc({g.outC, g.inC, g.kH, g.kW}, dt::f32, tag::any);
  } else {
    memory::dims wd{g.groups, g.outC / g.groups, g.inC / g.groups, g.kH, g.kW};
    e->user_w_md = memory::desc(wd, dt::f32, tag::goihw);
    any_w = memory::desc(wd, dt::f32, tag::any);
  }
  e->bias_md = g.bias ? memory::desc({g.outC}, dt::f32, tag::x) : memory::desc();
  e->strides = {g.strideH, g.strideW};
  e->dilates = {g.dilH - 1, g.dilW - 1};
  e->pad_l = {g.padH, g.padW};
  // The right padding that makes oneDNN's output size equal the floor-mode size (may be negative).
  e->pad_r = {(g.outH - 1) * g.strideH + (g.kH - 1) * g.dilH + 1 - g.inH - g.padH,
              (g.outW - 1) * g.strideW + (g.kW - 1) * g.dilW + 1 - g.inW - g.padW};

  auto fd = dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                            e->src_md, any_w, e->bias_md, e->dst_md, e->strides, e->dilates, e->pad_l,
                                            e->pad_r);
  e->fwd_pd = dnnl::convolution_forward::primitive_desc(fd, eng);
  e->fwd = dnnl::convolution_forward(e->fwd_pd);
  e->fwd_w_is_user = e->fwd_pd.weights_desc() == e->user_w_md;
  if (!e->fwd_w_is_user) {
    e->fwd_w = memory(e->fwd_pd.weights_desc(), eng);
    e->to_fwd_w = dnnl::reorder(dnnl::reorder::primitive_desc(eng, e->user_w_md, eng, e->fwd_pd.weights_desc()));
  }
  ConvEntry& ref = *e;
  entries.emplace(g, Cached{std::move(e), ++c.clock});
  return ref;
}

void ensure_backward_data(ConvEntry& e) {
  if (e.bwd_data_ready) return;
  auto& eng = cpu_engine();
  memory::desc any_w(e.user_w_md.dims(), dt::f32, tag::any);
  auto d = dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, e.src_md, any_w, e.dst_md,
                                                 e.strides, e.dilates, e.pad_l, e.pad_r);
  e.bd_pd = dnnl::convolution_backward_data::primitive_desc(d, eng, e.fwd_pd);
  e.bd = dnnl::convolution_backward_data(e.bd_pd);
  e.bd_w_is_user = e.bd_pd.weights_desc() == e.user_w_md;
  if (!e.bd_w_is_user) {
    e.bd_w = memory(e.bd_pd.weights_desc(), eng);
    e.to_bd_w = dnnl::reorder(dnnl::reorder::primitive_desc(eng, e.user_w_md, eng, e.bd_pd.weights_desc()));
  }
  e.bwd_data_ready = true;
}

void ensure_backward_weights(ConvEntry& e) {
  if (e.bwd_weights_ready) return;
  auto& eng = cpu_engine();
  memory::desc any_w(e.user_w_md.dims(), dt::f32, tag::any);
  auto d = dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, e.src_md, any_w, e.bias_md,
                                                    e.dst_md, e.strides, e.dilates, e.pad_l, e.pad_r);
  e.bw_pd = dnnl::convolution_backward_weights::primitive_desc(d, eng, e.fwd_pd);
  e.bw = dnnl::convolution_backward_weights(e.bw_pd);
  e.bw_dw_is_user = e.bw_pd.diff_weights_desc() == e.user_w_md;
  if (!e.bw_dw_is_user) {
    e.bw_dw = memory(e.bw_pd.diff_weights_desc(), eng);
    e.from_bw_dw = dnnl::reorder(dnnl::reorder::primitive_desc(eng, e.bw_pd.diff_weights_desc(), eng, e.user_w_md));
  }
  e.bwd_weights_ready = true;
}

// conv2dForward(geometry, x, w, bias|null, y)
Napi::Value Conv2dForward(const Napi::CallbackInfo& info) {
  const char* op = "conv2dForward";
  bool has_bias = !(info[3].IsNull() || info[3].IsUndefined());
  Geometry g = read_geometry(info, op, has_bias);
  FloatArg x = float_arg(info, 1, op, "x", g.in_size());
  FloatArg w = float_arg(info, 2, op, "w", g.weight_size());
  FloatArg b = float_arg(info, 3, op, "bias", static_cast<size_t>(g.outC), true);
  FloatArg y = float_arg(info, 4, op, "y", g.out_size());
  return guarded(info, op, [&]() -> Napi::Value {
    auto& eng = cpu_engine();
    auto& s = cpu_stream();
    ConvEntry& e = entry_for(g);
    memory user_w(e.user_w_md, eng, w.data);
    if (!e.fwd_w_is_user) e.to_fwd_w.execute(s, user_w, e.fwd_w);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.src_md, eng, x.data)},
                                         {DNNL_ARG_WEIGHTS, e.fwd_w_is_user ? user_w : e.fwd_w},
                                         {DNNL_ARG_DST, memory(e.dst_md, eng, y.data)}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, memory(e.bias_md, eng, b.data));
    e.fwd.execute(s, args);
    s.wait();
    return info.Env().Undefined();
  });
}

// conv2dBackwardData(geometry, dy, w, dx)
Napi::Value Conv2dBackwardData(const Napi::CallbackInfo& info) {
  const char* op = "conv2dBackwardData";
  Geometry g = read_geometry(info, op, false);
  FloatArg dy = float_arg(info, 1, op, "dy", g.out_size());
  FloatArg w = float_arg(info, 2, op, "w", g.weight_size());
  FloatArg dx = float_arg(info, 3, op, "dx", g.in_size());
  return guarded(info, op, [&]() -> Napi::Value {
    auto& eng = cpu_engine();
    auto& s = cpu_stream();
    ConvEntry& e = entry_for(g);
    ensure_backward_data(e);
    memory user_w(e.user_w_md, eng, w.data);
    if (!e.bd_w_is_user) e.to_bd_w.execute(s, user_w, e.bd_w);
    e.bd.execute(s, {{DNNL_ARG_DIFF_DST, memory(e.dst_md, eng, dy.data)},
                     {DNNL_ARG_WEIGHTS, e.bd_w_is_user ? user_w : e.bd_w},
                     {DNNL_ARG_DIFF_SRC, memory(e.src_md, eng, dx.data)}});
    s.wait();
    return info.Env().Undefined();
  });
}

// conv2dBackwardWeights(geometry, x, dy, dw, dbias|null)
Napi::Value Conv2dBackwardWeights(const Napi::CallbackInfo& info) {
  const char* op = "conv2dBackwardWeights";
  bool has_bias = !(info[4].IsNull() || info[4].IsUndefined());
  Geometry g = read_geometry(info, op, has_bias);
  FloatArg x = float_arg(info, 1, op, "x", g.in_size());
  FloatArg dy = float_arg(info, 2, op, "dy", g.out_size());
  FloatArg dw = float_arg(info, 3, op, "dw", g.weight_size());
  FloatArg db = float_arg(info, 4, op, "dbias", static_cast<size_t>(g.outC), true);
  return guarded(info, op, [&]() -> Napi::Value {
    auto& eng = cpu_engine();
    auto& s = cpu_stream();
    ConvEntry& e = entry_for(g);
    ensure_backward_weights(e);
    memory user_dw(e.user_w_md, eng, dw.data);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e.src_md, eng, x.data)},
                                         {DNNL_ARG_DIFF_DST, memory(e.dst_md, eng, dy.data)},
                                         {DNNL_ARG_DIFF_WEIGHTS, e.bw_dw_is_user ? user_dw : e.bw_dw}};
    if (has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(e.bias_md, eng, db.data));
    e.bw.execute(s, args);
    if (!e.bw_dw_is_user) e.from_bw_dw.execute(s, e.bw_dw, user_dw);
    s.wait();
    return info.Env().Undefined();
  });
}

// convImplementation(geometry) -> the oneDNN kernel names chosen (for benchmarks and diagnostics).
Napi::Value ConvImplementation(const Napi::CallbackInfo& info) {
  const char* op = "convImplementation";
  Geometry g = read_geometry(info, op, false);
  return guarded(info, op, [&]() -> Napi::Value {
    ConvEntry& e = entry_for(g);
    ensure_backward_data(e);
    ensure_backward_weights(e);
    std::string s = std::string("fwd=") + e.fwd_pd.impl_info_str() + " bwd_data=" + e.bd_pd.impl_info_str() +
                    " bwd_weights=" + e.bw_pd.impl_info_str();
    return Napi::String::New(info.Env(), s);
  });
}

}  // namespace

size_t convolution_cache_size() { return cache().entries.size(); }
size_t convolution_cache_limit() { return kCacheLimit; }

void register_convolution(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "conv2dForward", Conv2dForward);
  STRATA_EXPORT(env, exports, "conv2dBackwardData", Conv2dBackwardData);
  STRATA_EXPORT(env, exports, "conv2dBackwardWeights", Conv2dBackwardWeights);
  STRATA_EXPORT(env, exports, "convImplementation", ConvImplementation);
}

}  // namespace strata
