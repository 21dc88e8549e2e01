// Entry point of the native backend: registers the kernels and controls threading.
#include <omp.h>

#include <thread>

#include "common.h"

namespace strata {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One stream per thread: a stream is not safe to share, and the addon may be loaded by several
// worker threads of one process (each gets its own instance of this module's exports, but the same
// statics). The engine itself is thread-safe and shared.
dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// Integer inference for deployed models (int8-inference.cc).
void register_int8_inference(Napi::Env env, Napi::Object exports);

}  // namespace strata

namespace {

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int64_t n = strata::int_value(info, 0, "setThreads", "threads");
  if (n < 1 || n > 1024) throw Napi::RangeError::New(info.Env(), "setThreads: expected threads in [1, 1024]");
  omp_set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  const dnnl_version_t* v = dnnl_version();
  std::string s = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  return Napi::String::New(info.Env(), s);
}

Napi::Value CacheSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(strata::convolution_cache_size()));
}

Napi::Value CacheLimit(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(strata::convolution_cache_limit()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Default: one thread per core the OS reports, unless OMP_NUM_THREADS already says otherwise.
  if (getenv("OMP_NUM_THREADS") == nullptr) {
    unsigned hw = std::thread::hardware_concurrency();
    if (hw > 0) omp_set_num_threads(static_cast<int>(hw));
  }
  STRATA_EXPORT(env, exports, "setThreads", SetThreads);
  STRATA_EXPORT(env, exports, "getThreads", GetThreads);
  STRATA_EXPORT(env, exports, "version", Version);
  STRATA_EXPORT(env, exports, "primitiveCacheSize", CacheSize);
  STRATA_EXPORT(env, exports, "primitiveCacheLimit", CacheLimit);
  strata::register_convolution(env, exports);
  strata::register_batch_norm(env, exports);
  strata::register_pooling(env, exports);
  strata::register_dense(env, exports);
  strata::register_elementwise(env, exports);
  strata::register_fake_quant(env, exports);
  strata::register_int8_inference(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(strata_native, Init)
