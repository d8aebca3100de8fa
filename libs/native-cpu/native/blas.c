/* BLAS access for fedlora's native kernels.
 *
 * OpenBLAS is opened with dlopen at run time instead of being linked, so the addon builds with only
 * a C compiler and still loads on machines without any BLAS (air-gapped installs): there, fl_sgemm
 * falls back to cache-friendly C loops, slower but correct. FEDLORA_BLAS_LIB overrides the library
 * path; FEDLORA_BLAS_LIB=none forces the fallback. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include "fl_native.h"

typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);

enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

static sgemm_fn g_sgemm = NULL;
static set_threads_fn g_set_threads = NULL;
static get_threads_fn g_get_threads = NULL;
static char g_name[256] = "";
static int g_threads = 1;

static int try_open(const char *lib) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  sgemm_fn f = (sgemm_fn)dlsym(h, "cblas_sgemm");
  if (!f) { dlclose(h); return 0; }
  g_sgemm = f;
  g_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  g_get_threads = (get_threads_fn)dlsym(h, "openblas_get_num_threads");
  strncpy(g_name, lib, sizeof(g_name) - 1);
  return 1;
}

int fl_blas_load(void) {
  if (g_sgemm) return 1;
  const char *env = getenv("FEDLORA_BLAS_LIB");
  if (env && env[0]) {
    if (strcmp(env, "none") == 0) return 0;
    return try_open(env);
  }
  static const char *candidates[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0",
                                     "libcblas.so.3", "libblis.so.4", NULL};
  for (int i = 0; candidates[i]; i++)
    if (try_open(candidates[i])) return 1;
  return 0;
}

const char *fl_blas_name(void) { return g_name; }

void fl_blas_set_threads(int n) {
  if (n < 1) n = 1;
  g_threads = n;
  fl_set_loop_threads(n);
  if (g_set_threads) g_set_threads(n);
}

/* OpenBLAS splits any product above ~64^3 across its threads; for the many small products of a
 * batched matmul (attention: 128 x 64 x 128 per head) the hand-off costs more than it saves (1.6x
 * slower at 2 threads here), so a batch loop of small products runs them on one thread. */
int fl_blas_single_thread_begin(void) {
  if (!g_set_threads || g_threads <= 1) return 0;
  g_set_threads(1);
  return 1;
}

void fl_blas_single_thread_end(int token) {
  if (token && g_set_threads) g_set_threads(g_threads);
}

int fl_blas_get_threads(void) { return g_get_threads ? g_get_threads() : g_threads; }

/* Fallback: pack op(A) as [M,K] and op(B) as [K,N], then i-k-j loops the compiler vectorises. */
static void fallback_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
  float *pa = NULL, *pb = NULL;
  const float *a = A, *b = B;
  int la = lda, lb = ldb;
  if (ta) {
    pa = (float *)malloc(sizeof(float) * (size_t)M * K);
    for (int k = 0; k < K; k++)
      for (int i = 0; i < M; i++) pa[(size_t)i * K + k] = A[(size_t)k * lda + i];
    a = pa; la = K;
  }
  if (tb) {
    pb = (float *)malloc(sizeof(float) * (size_t)K * N);
    for (int j = 0; j < N; j++)
      for (int k = 0; k < K; k++) pb[(size_t)k * N + j] = B[(size_t)j * ldb + k];
    b = pb; lb = N;
  }
  for (int i = 0; i < M; i++) {
    float *c = C + (size_t)i * ldc;
    if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
    else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
    for (int k = 0; k < K; k++) {
      const float s = alpha * a[(size_t)i * la + k];
      const float *br = b + (size_t)k * lb;
      for (int j = 0; j < N; j++) c[j] += s * br[j];
    }
  }
  free(pa);
  free(pb);
}

void fl_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
    return;
  }
  if (g_sgemm)
    g_sgemm(CBLAS_ROW_MAJOR, ta ? CBLAS_TRANS : CBLAS_NO_TRANS, tb ? CBLAS_TRANS : CBLAS_NO_TRANS, M,
            N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    fallback_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
