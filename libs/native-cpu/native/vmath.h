/* Branch-free float exp/tanh that GCC vectorises (glibc's expf/tanhf are scalar calls unless
 * -ffast-math, which would also break NaN handling elsewhere). exp: Cody-Waite range reduction
 * x = n ln2 + r, |r| <= ln2/2, then a degree-6 minimax-style Taylor polynomial (Cephes expf
 * coefficients); max relative error about 2 ulp on [-87, 88]. FL_CLONES compiles the hot loops
 * three times (AVX-512F, about 1.8x AVX2 on exp/GELU on an AVX-512 EPYC; AVX2; baseline x86-64; "arch=" clones would dispatch on the CPU model and miss AMD parts) and picks one at load time, so one build runs anywhere. */
#ifndef FL_VMATH_H
#define FL_VMATH_H
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FL_CLONES
#endif

static inline float fl_expf(float x) {
  /* Clamp so 2^n stays a normal float; the selects at the end restore 0 and +inf. NaN passes
   * through every step (comparisons with NaN are false) and comes out NaN. */
  float xc = x < -87.0f ? -87.0f : x;
  xc = xc > 88.0f ? 88.0f : xc;
  const float t = xc * 1.44269504088896341f;
  const float shifted = t + 12582912.0f; /* 1.5 * 2^23: the FPU rounds t to the nearest integer */
  const float fn = shifted - 12582912.0f;
  int32_t si;
  memcpy(&si, &shifted, sizeof(si));
  const int32_t n = si - 0x4B400000;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  float y = p * scale;
  y = x > 88.72283935546875f ? __builtin_inff() : y;
  y = x < -87.0f ? 0.0f : y; /* true value < 1.7e-38: flushed like a denormal */
  return y;
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): no cancellation for large |x|; for small
 * |x| the absolute error stays below 1e-7. */
static inline float fl_tanhf(float x) {
  const float ax = x < 0.0f ? -x : x;
  const float e = fl_expf(-2.0f * ax);
  const float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}
/* Row maximum in 8 lanes (vectorises); NaN elements are skipped, which is fine where the caller
 * feeds the same row through exp (softmax, cross-entropy) and so still returns NaN. */
static inline float fl_row_max_fast(const float *x, int64_t n) {
  float acc[8];
  for (int k = 0; k < 8; k++) acc[k] = x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
  float m = acc[0];
  for (int k = 1; k < 8; k++) m = acc[k] > m ? acc[k] : m;
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

/* Row sum in 8 float lanes (vectorises without -ffast-math). */
static inline float fl_row_sum(const float *x, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) acc[k] += x[j + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; j++) s += x[j];
  return s;
}
#endif
