/*
 * The machine's float32 multiply-add ceiling: every thread runs independent chains of 8-lane FMAs
 * (enough chains to cover the instruction's latency on both FMA ports), with no memory traffic.
 * No real kernel can beat this number, so it bounds how fast any training step can be here.
 * Built and run by peakGflops in bench/common.ts: cc -O3 -mavx2 -mfma -fopenmp (-O3 keeps the chains in registers); prints GFLOP/s.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 12

static double run(long iterations) {
  double start = omp_get_wtime();
#pragma omp parallel
  {
    __m256 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < iterations; i++)
      for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float sink[8];
    __m256 total = acc[0];
    for (int c = 1; c < CHAINS; c++) total = _mm256_add_ps(total, acc[c]);
    _mm256_storeu_ps(sink, total);
    if (sink[0] == 12345.0f) printf("unlikely\n"); /* keeps the loop alive */
  }
  return omp_get_wtime() - start;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000000L / CHAINS;
  run(iterations / 10); /* wake the cores */
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    double s = run(iterations);
    if (s < best) best = s;
  }
  double flops = 2.0 * 8 * CHAINS * (double)iterations * omp_get_max_threads();
  printf("%.1f\n", flops / best / 1e9);
  return 0;
}
