// Shared helpers for the Strata native backend: argument unpacking with bounds checks, the oneDNN
// engine (shared) and stream (one per thread), error conversion and the guard every entry point is
// registered behind (STRATA_EXPORT). Option parsing and shape validation happen in
// TypeScript; the checks here only guarantee that no kernel reads or writes out of bounds.
#pragma once

#include <napi.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <string>

namespace strata {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

struct FloatArg {
  float* data = nullptr;
  size_t length = 0;
};

// A Float32Array argument (or null when `optional`), required to hold at least `need` floats.
inline FloatArg float_arg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name,
                          size_t need, bool optional = false) {
  Napi::Value v = info[index];
  if (optional && (v.IsNull() || v.IsUndefined())) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected Float32Array for " + name);
  }
  auto arr = v.As<Napi::Float32Array>();
  if (arr.ElementLength() < need) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " holds " +
                                                std::to_string(arr.ElementLength()) + " floats but " +
                                                std::to_string(need) + " are needed");
  }
  return {arr.Data(), arr.ElementLength()};
}

inline int32_t* int_arg(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name, size_t need) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected Int32Array for " + name);
  }
  auto arr = v.As<Napi::Int32Array>();
  if (arr.ElementLength() < need) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " holds " +
                                                std::to_string(arr.ElementLength()) + " values but " +
                                                std::to_string(need) + " are needed");
  }
  return arr.Data();
}

// Largest count or size any argument may state: 2^53, the largest integer a JS number holds exactly.
// Keeping every factor below it and every product checked means no size computation can wrap.
constexpr int64_t kMaxCount = int64_t(1) << 53;

inline int64_t int_value(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected number for " + name);
  double d = v.As<Napi::Number>().DoubleValue();
  // The range test comes first: casting a double outside int64's range to int64 is undefined.
  if (!(d >= 0 && d <= static_cast<double>(kMaxCount)) || d != std::floor(d)) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": expected integer in [0, 2^53] for " + name +
                                                " but received " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

inline double num_value(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected number for " + name);
  return v.As<Napi::Number>().DoubleValue();
}

inline int64_t geom_int(const Napi::Object& g, const char* key, const char* op) {
  Napi::Value v = g.Get(key);
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(g.Env(), std::string(op) + ": geometry." + key + " must be a number");
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 1e9) || d != std::floor(d)) {
    throw Napi::RangeError::New(g.Env(), std::string(op) + ": geometry." + key +
                                             " must be an integer in [0, 1e9] but received " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

// The product of non-negative factors as an element count, refused (RangeError naming `what`) when it
// overflows int64 or exceeds kMaxCount: a wrapped product would let a kernel index past its arrays.
inline size_t checked_count(Napi::Env env, const char* op, const char* what, std::initializer_list<int64_t> factors) {
  int64_t total = 1;
  for (int64_t f : factors) {
    if (f < 0) throw Napi::RangeError::New(env, std::string(op) + ": negative factor in the size of " + what);
    int64_t next;
    if (__builtin_mul_overflow(total, f, &next) || next > kMaxCount) {
      throw Napi::RangeError::New(env, std::string(op) + ": the size of " + what + " exceeds 2^53 elements");
    }
    total = next;
  }
  return static_cast<size_t>(total);
}

// Turns every C++ exception into a JS error naming the op. node-addon-api converts only Napi::Error
// itself; any other exception leaving a callback reaches std::terminate and aborts the process.
inline Napi::Error to_js_error(Napi::Env env, const char* op) {
  try {
    throw;
  } catch (const Napi::Error& e) {
    return e;
  } catch (const dnnl::error& e) {
    return Napi::Error::New(env, std::string(op) + ": oneDNN error: " + e.what());
  } catch (const std::bad_alloc&) {
    return Napi::RangeError::New(env, std::string(op) + ": out of memory");
  } catch (const std::exception& e) {
    return Napi::Error::New(env, std::string(op) + ": " + e.what());
  } catch (...) {
    return Napi::Error::New(env, std::string(op) + ": unknown native error");
  }
}

// Runs body, turning oneDNN and std exceptions into JS errors that name the op.
template <typename F>
auto guarded(const Napi::CallbackInfo& info, const char* op, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    throw to_js_error(info.Env(), op);
  }
}

// Every exported function goes through this: the op name travels as the function's data pointer,
// so one template instance per entry point guards it whole (argument checks included).
template <Napi::Function::Callback Fn>
Napi::Value guarded_entry(const Napi::CallbackInfo& info) {
  const char* op = static_cast<const char*>(info.Data());
  try {
    return Fn(info);
  } catch (...) {
    throw to_js_error(info.Env(), op == nullptr ? "native" : op);
  }
}

// Registers `fn` as exports[name] behind guarded_entry. Use it for every entry point, new ones too:
//   STRATA_EXPORT(env, exports, "conv2dForward", Conv2dForward);
#define STRATA_EXPORT(env, exports, name, fn) \
  (exports).Set((name), Napi::Function::New<::strata::guarded_entry<fn>>((env), (name), const_cast<char*>(name)))

void register_convolution(Napi::Env env, Napi::Object exports);
void register_batch_norm(Napi::Env env, Napi::Object exports);
void register_pooling(Napi::Env env, Napi::Object exports);
void register_dense(Napi::Env env, Napi::Object exports);
void register_elementwise(Napi::Env env, Napi::Object exports);
void register_fake_quant(Napi::Env env, Napi::Object exports);
size_t convolution_cache_size();
size_t convolution_cache_limit();

}  // namespace strata
