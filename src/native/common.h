// Shared helpers for the Strata native backend: argument unpacking with bounds checks, the oneDNN
// engine/stream singletons, and error conversion. Option parsing and shape validation happen in
// TypeScript; the checks here only guarantee that no kernel reads or writes out of bounds.
#pragma once

#include <napi.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
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
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": " + name + " is too short");
  }
  return arr.Data();
}

inline int64_t int_value(const Napi::CallbackInfo& info, size_t index, const char* op, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(op) + ": expected number for " + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string(op) + ": expected non-negative integer for " + name);
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
  if (d < 0 || d > 1e9 || d != static_cast<double>(static_cast<int64_t>(d))) {
    throw Napi::RangeError::New(g.Env(), std::string(op) + ": geometry." + key + " must be a non-negative integer");
  }
  return static_cast<int64_t>(d);
}

// Runs body, turning oneDNN and std exceptions into JS errors that name the op.
template <typename F>
auto guarded(const Napi::CallbackInfo& info, const char* op, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string(op) + ": oneDNN error: " + e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(op) + ": " + e.what());
  }
}

void register_convolution(Napi::Env env, Napi::Object exports);
void register_batch_norm(Napi::Env env, Napi::Object exports);
void register_pooling(Napi::Env env, Napi::Object exports);
void register_dense(Napi::Env env, Napi::Object exports);
void register_elementwise(Napi::Env env, Napi::Object exports);
void register_fake_quant(Napi::Env env, Napi::Object exports);
size_t convolution_cache_size();

}  // namespace strata
