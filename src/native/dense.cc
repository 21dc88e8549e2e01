// Linear (fully connected) layers through oneDNN's row-major sgemm.
#include "common.h"

namespace strata {
namespace {

void gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
          float* C, int64_t ldc) {
  // An empty product: nothing to compute, and sgemm refuses leading dimensions of 0.
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = 0.f;
    return;
  }
  auto st = dnnl::sgemm(ta, tb, M, N, K, 1.f, A, lda, B, ldb, 0.f, C, ldc);
  if (st != dnnl::status::success) throw std::runtime_error("sgemm failed");
}

// linearForward(rows, inF, outF, x, w, bias|null, y): y = x w^T + bias
Napi::Value Forward(const Napi::CallbackInfo& info) {
  const char* op = "linearForward";
  int64_t R = int_value(info, 0, op, "rows"), K = int_value(info, 1, op, "inFeatures"),
          O = int_value(info, 2, op, "outFeatures");
  size_t RK = checked_count(info.Env(), op, "x", {R, K}), OK = checked_count(info.Env(), op, "w", {O, K});
  size_t RO = checked_count(info.Env(), op, "y", {R, O});
  FloatArg x = float_arg(info, 3, op, "x", RK), w = float_arg(info, 4, op, "w", OK);
  FloatArg b = float_arg(info, 5, op, "bias", O, true);
  FloatArg y = float_arg(info, 6, op, "y", RO);
  return guarded(info, op, [&]() -> Napi::Value {
    gemm('N', 'T', R, O, K, x.data, K, w.data, K, y.data, O);
    if (b.data != nullptr) {
#pragma omp parallel for schedule(static) if (R * O > 65536)
      for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) y.data[r * O + o] += b.data[o];
    }
    return info.Env().Undefined();
  });
}

// linearBackward(rows, inF, outF, x, w, dy, dx|null, dw, dbias|null)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  const char* op = "linearBackward";
  int64_t R = int_value(info, 0, op, "rows"), K = int_value(info, 1, op, "inFeatures"),
          O = int_value(info, 2, op, "outFeatures");
  size_t RK = checked_count(info.Env(), op, "x", {R, K}), OK = checked_count(info.Env(), op, "w", {O, K});
  size_t RO = checked_count(info.Env(), op, "dy", {R, O});
  FloatArg x = float_arg(info, 3, op, "x", RK), w = float_arg(info, 4, op, "w", OK);
  FloatArg dy = float_arg(info, 5, op, "dy", RO);
  FloatArg dx = float_arg(info, 6, op, "dx", RK, true);
  FloatArg dw = float_arg(info, 7, op, "dw", OK);
  FloatArg db = float_arg(info, 8, op, "dbias", O, true);
  return guarded(info, op, [&]() -> Napi::Value {
    if (dx.data != nullptr) gemm('N', 'N', R, K, O, dy.data, O, w.data, K, dx.data, K);
    gemm('T', 'N', O, K, R, dy.data, O, x.data, K, dw.data, K);
    if (db.data != nullptr) {
      for (int64_t o = 0; o < O; o++) db.data[o] = 0.f;
      for (int64_t r = 0; r < R; r++)
        for (int64_t o = 0; o < O; o++) db.data[o] += dy.data[r * O + o];
    }
    return info.Env().Undefined();
  });
}

}  // namespace

void register_dense(Napi::Env env, Napi::Object exports) {
  STRATA_EXPORT(env, exports, "linearForward", Forward);
  STRATA_EXPORT(env, exports, "linearBackward", Backward);
}

}  // namespace strata
