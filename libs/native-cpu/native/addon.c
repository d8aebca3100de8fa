/* N-API bindings for fedlora's native CPU kernels. Arguments are Float32Array / Int32Array views
 * owned by JS (the tfjs cpu backend keeps tensors as plain TypedArrays, so nothing is copied) and
 * plain arrays of small integers for shapes. The JS layer (src/native-binding.ts) validates shapes;
 * this layer checks types and buffer lengths so a wrong call throws instead of corrupting memory. */
#include <node_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fl_native.h"

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "fedlora-native: N-API call failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)
#define FAIL(kind, msg)              \
  do {                               \
    napi_throw_##kind(env, NULL, msg); \
    return NULL;                     \
  } while (0)

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  return argc >= want;
}

/* Returns element count, or -1 (with a pending TypeError) when v is not of the wanted type. */
static int64_t typed(napi_env env, napi_value v, napi_typedarray_type want, void **data) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  if (!is) { napi_throw_type_error(env, NULL, "fedlora-native: expected a typed array"); return -1; }
  napi_typedarray_type t;
  size_t len;
  napi_get_typedarray_info(env, v, &t, &len, data, NULL, NULL);
  if (t != want) {
    napi_throw_type_error(env, NULL, want == napi_float32_array   ? "fedlora-native: expected a Float32Array"
                                     : want == napi_float64_array ? "fedlora-native: expected a Float64Array"
                                                                  : "fedlora-native: expected an Int32Array");
    return -1;
  }
  return (int64_t)len;
}

static int64_t f32(napi_env env, napi_value v, float **p) { return typed(env, v, napi_float32_array, (void **)p); }
static int64_t i32(napi_env env, napi_value v, int32_t **p) { return typed(env, v, napi_int32_array, (void **)p); }
static int64_t f64(napi_env env, napi_value v, double **p) { return typed(env, v, napi_float64_array, (void **)p); }

static int64_t num(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

/* Reads a JS array of integers into out (at most FL_MAX_DIMS); returns its length or -1. */
static int dims(napi_env env, napi_value arr, int64_t *out) {
  uint32_t n = 0;
  if (napi_get_array_length(env, arr, &n) != napi_ok || n > FL_MAX_DIMS) {
    napi_throw_range_error(env, NULL, "fedlora-native: expected an array of at most 8 dimensions");
    return -1;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    out[i] = num(env, e);
  }
  return (int)n;
}

static int64_t prod(const int64_t *s, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) p *= s[i];
  return p;
}

static napi_value Info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, blas, th;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_create_string_utf8(env, fl_blas_name(), NAPI_AUTO_LENGTH, &blas));
  CHECK(napi_create_int32(env, fl_blas_get_threads(), &th));
  CHECK(napi_set_named_property(env, o, "blas", blas));
  CHECK(napi_set_named_property(env, o, "threads", th));
  return o;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) FAIL(type_error, "setThreads(n)");
  fl_blas_set_threads((int)num(env, argv[0]));
  return NULL;
}

/* matmul(a, b, out, batchShape, aStrides, bStrides, M, N, K, transA, transB) */
static napi_value Matmul(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  if (!get_args(env, info, 11, argv)) FAIL(type_error, "matmul: expected 11 arguments");
  float *a, *b, *c;
  int64_t la = f32(env, argv[0], &a), lb = f32(env, argv[1], &b), lc = f32(env, argv[2], &c);
  if (la < 0 || lb < 0 || lc < 0) return NULL;
  int64_t bs[FL_MAX_DIMS], sa[FL_MAX_DIMS], sb[FL_MAX_DIMS];
  int nb = dims(env, argv[3], bs);
  if (nb < 0 || dims(env, argv[4], sa) != nb || dims(env, argv[5], sb) != nb)
    FAIL(range_error, "matmul: batch shape and strides must have the same length");
  const int64_t M = num(env, argv[6]), N = num(env, argv[7]), K = num(env, argv[8]);
  bool ta = false, tb = false;
  napi_get_value_bool(env, argv[9], &ta);
  napi_get_value_bool(env, argv[10], &tb);
  const int64_t batch = prod(bs, nb);
  int64_t maxA = 0, maxB = 0;
  for (int d = 0; d < nb; d++) { maxA += sa[d] * (bs[d] - 1); maxB += sb[d] * (bs[d] - 1); }
  if (batch > 0 && (maxA + M * K > la || maxB + K * N > lb || batch * M * N > lc))
    FAIL(range_error, "matmul: buffers are smaller than the shapes and strides require");
  int64_t idx[FL_MAX_DIMS] = {0};
  int64_t oa = 0, ob = 0;
  const int single = batch > 1 && M * N * K < FL_SMALL_PRODUCT ? fl_blas_single_thread_begin() : 0;
  for (int64_t i = 0; i < batch; i++) {
    fl_sgemm(ta, tb, (int)M, (int)N, (int)K, 1.0f, a + oa, ta ? (int)M : (int)K, b + ob,
             tb ? (int)K : (int)N, 0.0f, c + i * M * N, (int)N);
    for (int d = nb - 1; d >= 0; d--) {
      idx[d]++; oa += sa[d]; ob += sb[d];
      if (idx[d] < bs[d]) break;
      oa -= sa[d] * bs[d]; ob -= sb[d] * bs[d]; idx[d] = 0;
    }
  }
  fl_blas_single_thread_end(single);
  return NULL;
}

/* binary(op, a, aShape, b, bShape, out, outShape) */
static napi_value Binary(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) FAIL(type_error, "binary: expected 7 arguments");
  float *a, *b, *o;
  int64_t as[FL_MAX_DIMS], bs[FL_MAX_DIMS], os[FL_MAX_DIMS];
  int64_t la = f32(env, argv[1], &a), lb = f32(env, argv[3], &b), lo = f32(env, argv[5], &o);
  if (la < 0 || lb < 0 || lo < 0) return NULL;
  int na = dims(env, argv[2], as), nb = dims(env, argv[4], bs), no = dims(env, argv[6], os);
  if (na < 0 || nb < 0 || no < 0) return NULL;
  if (prod(as, na) > la || prod(bs, nb) > lb || prod(os, no) > lo || na > no || nb > no)
    FAIL(range_error, "binary: buffers do not match their shapes");
  for (int d = 0; d < no; d++) {
    const int64_t da = d - (no - na) >= 0 ? as[d - (no - na)] : 1;
    const int64_t db = d - (no - nb) >= 0 ? bs[d - (no - nb)] : 1;
    if ((da != 1 && da != os[d]) || (db != 1 && db != os[d]))
      FAIL(range_error, "binary: shapes do not broadcast to the output shape");
  }
  fl_binary((int)num(env, argv[0]), a, as, na, b, bs, nb, o, os, no);
  return NULL;
}

/* unary(op, x, out) */
static napi_value Unary(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) FAIL(type_error, "unary: expected 3 arguments");
  float *x, *o;
  int64_t lx = f32(env, argv[1], &x), lo = f32(env, argv[2], &o);
  if (lx < 0 || lo < 0) return NULL;
  if (lo < lx) FAIL(range_error, "unary: output is smaller than input");
  fl_unary((int)num(env, argv[0]), x, o, lx);
  return NULL;
}

/* Shared checks for (x, out, rows, cols)-style calls. */
static int rows_cols(napi_env env, napi_value *argv, float **x, float **o, int64_t *rows,
                     int64_t *cols, int64_t outLen) {
  int64_t lx = f32(env, argv[0], x), lo = f32(env, argv[1], o);
  if (lx < 0 || lo < 0) return 0;
  *rows = num(env, argv[2]);
  *cols = num(env, argv[3]);
  const int64_t need = outLen < 0 ? *rows * *cols : (outLen == 0 ? *rows : *cols);
  if (*rows < 0 || *cols < 0 || *rows * *cols > lx || need > lo) {
    napi_throw_range_error(env, NULL, "fedlora-native: buffers smaller than rows x cols");
    return 0;
  }
  return 1;
}

static napi_value Softmax(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  float *x, *o;
  int64_t r, c;
  if (!get_args(env, info, 4, argv)) FAIL(type_error, "softmax(x, out, rows, cols)");
  if (!rows_cols(env, argv, &x, &o, &r, &c, -1)) return NULL;
  if (c > 0) fl_softmax_rows(x, o, r, c);
  return NULL;
}

/* causalMatmul(mode, a, b, c, batch, T, D, block): per batch item, products of causal attention
 * that touch only the lower block triangle of the [T, T] operand (blocks of `block` rows).
 * mode 0: c[T,T] = a[T,D] b[T,D]^T on row block i for key blocks 0..i (rest of c set to 0; the
 *         diagonal blocks' upper entries are computed, callers mask them);
 * mode 1: c[T,D] = a[T,T] b[T,D], a lower (block) triangular;
 * mode 2: c[T,D] = a[T,T]^T b[T,D], a lower (block) triangular. */
static napi_value CausalMatmul(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  float *a, *b, *c;
  if (!get_args(env, info, 8, argv)) FAIL(type_error, "causalMatmul(mode, a, b, c, batch, T, D, block)");
  const int64_t mode = num(env, argv[0]);
  int64_t la = f32(env, argv[1], &a), lb = f32(env, argv[2], &b), lc = f32(env, argv[3], &c);
  if (la < 0 || lb < 0 || lc < 0) return NULL;
  const int64_t batch = num(env, argv[4]), T = num(env, argv[5]), D = num(env, argv[6]), bt = num(env, argv[7]);
  if (mode < 0 || mode > 2 || batch < 0 || T <= 0 || D <= 0 || bt <= 0) FAIL(range_error, "causalMatmul: bad mode or sizes");
  const int64_t tt = T * T, td = T * D;
  const int64_t na = mode == 0 ? td : tt, nc = mode == 0 ? tt : td;
  if (batch * na > la || batch * td > lb || batch * nc > lc) FAIL(range_error, "causalMatmul: buffers smaller than the shapes require");
  const int single = fl_blas_single_thread_begin();
  for (int64_t i = 0; i < batch; i++) {
    const float *ai = a + i * na, *bi = b + i * td;
    float *ci = c + i * nc;
    for (int64_t r0 = 0; r0 < T; r0 += bt) {
      const int64_t m = T - r0 < bt ? T - r0 : bt;
      if (mode == 0) {
        const int64_t e = r0 + m;
        fl_sgemm(0, 1, (int)m, (int)e, (int)D, 1.0f, ai + r0 * D, (int)D, bi, (int)D, 0.0f, ci + r0 * T, (int)T);
        for (int64_t r = r0; r < e; r++) memset(ci + r * T + e, 0, sizeof(float) * (size_t)(T - e));
      } else if (mode == 1) {
        fl_sgemm(0, 0, (int)m, (int)D, (int)(r0 + m), 1.0f, ai + r0 * T, (int)T, bi, (int)D, 0.0f, ci + r0 * D, (int)D);
      } else {
        fl_sgemm(1, 0, (int)m, (int)D, (int)(T - r0), 1.0f, ai + r0 * T + r0, (int)T, bi + r0 * D, (int)D, 0.0f, ci + r0 * D, (int)D);
      }
    }
  }
  fl_blas_single_thread_end(single);
  return NULL;
}

/* causalSoftmax(x, out, rows, cols, scale): cols is T, rows a multiple of T. */
static napi_value CausalSoftmax(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  float *x, *o;
  int64_t r, c;
  double scale = 1.0;
  if (!get_args(env, info, 5, argv)) FAIL(type_error, "causalSoftmax(x, out, rows, cols, scale)");
  if (!rows_cols(env, argv, &x, &o, &r, &c, -1)) return NULL;
  if (c > 0 && r % c != 0) FAIL(range_error, "causalSoftmax: rows must be a multiple of cols (square [T, T] blocks)");
  napi_get_value_double(env, argv[4], &scale);
  if (c > 0) fl_causal_softmax(x, o, r, c, (float)scale);
  return NULL;
}

/* causalSoftmaxBwd(dy, y, dx, rows, cols, scale) */
static napi_value CausalSoftmaxBwd(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  double scale = 1.0;
  if (!get_args(env, info, 6, argv)) FAIL(type_error, "causalSoftmaxBwd(dy, y, dx, rows, cols, scale)");
  float *dy, *y, *dx;
  int64_t l0 = f32(env, argv[0], &dy), l1 = f32(env, argv[1], &y), l2 = f32(env, argv[2], &dx);
  if (l0 < 0 || l1 < 0 || l2 < 0) return NULL;
  const int64_t r = num(env, argv[3]), c = num(env, argv[4]);
  if (r < 0 || c < 0 || r * c > l0 || r * c > l1 || r * c > l2) FAIL(range_error, "causalSoftmaxBwd: buffers smaller than rows x cols");
  if (c > 0 && r % c != 0) FAIL(range_error, "causalSoftmaxBwd: rows must be a multiple of cols (square [T, T] blocks)");
  napi_get_value_double(env, argv[5], &scale);
  if (c > 0) fl_causal_softmax_bwd(dy, y, dx, r, c, (float)scale);
  return NULL;
}

/* softmaxBwd(dy, y, dx, rows, cols) */
static napi_value SoftmaxBwd(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) FAIL(type_error, "softmaxBwd(dy, y, dx, rows, cols)");
  float *dy, *y, *dx;
  int64_t l0 = f32(env, argv[0], &dy), l1 = f32(env, argv[1], &y), l2 = f32(env, argv[2], &dx);
  if (l0 < 0 || l1 < 0 || l2 < 0) return NULL;
  const int64_t r = num(env, argv[3]), c = num(env, argv[4]);
  if (r < 0 || c < 0 || r * c > l0 || r * c > l1 || r * c > l2) FAIL(range_error, "softmaxBwd: buffers smaller than rows x cols");
  if (c > 0) fl_softmax_bwd(dy, y, dx, r, c);
  return NULL;
}

static napi_value ReduceRows(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  float *x, *o;
  int64_t r, c;
  if (!get_args(env, info, 5, argv)) FAIL(type_error, "reduceRows(op, x, out, rows, cols)");
  if (!rows_cols(env, argv + 1, &x, &o, &r, &c, 0)) return NULL;
  if (c > 0) fl_reduce_rows((int)num(env, argv[0]), x, o, r, c);
  return NULL;
}

static napi_value ReduceCols(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  float *x, *o;
  int64_t r, c;
  if (!get_args(env, info, 5, argv)) FAIL(type_error, "reduceCols(op, x, out, rows, cols)");
  if (!rows_cols(env, argv + 1, &x, &o, &r, &c, 1)) return NULL;
  if (r > 0) fl_reduce_cols((int)num(env, argv[0]), x, o, r, c);
  return NULL;
}

/* transpose(x, shape, perm, out) */
static napi_value Transpose(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) FAIL(type_error, "transpose(x, shape, perm, out)");
  float *x, *o;
  int64_t shape[FL_MAX_DIMS], perm[FL_MAX_DIMS];
  int64_t lx = f32(env, argv[0], &x), lo = f32(env, argv[3], &o);
  if (lx < 0 || lo < 0) return NULL;
  int n = dims(env, argv[1], shape);
  if (n < 0 || dims(env, argv[2], perm) != n) FAIL(range_error, "transpose: perm length must equal rank");
  int seen[FL_MAX_DIMS] = {0};
  for (int d = 0; d < n; d++) {
    if (perm[d] < 0 || perm[d] >= n || seen[perm[d]]) FAIL(range_error, "transpose: perm is not a permutation");
    seen[perm[d]] = 1;
  }
  if (prod(shape, n) > lx || prod(shape, n) > lo) FAIL(range_error, "transpose: buffers smaller than shape");
  fl_transpose(x, shape, n, perm, o);
  return NULL;
}

/* layerNormFwd(x, gamma, beta, y, mean, rstd, rows, cols, eps) */
static napi_value LayerNormFwd(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!get_args(env, info, 9, argv)) FAIL(type_error, "layerNormFwd: expected 9 arguments");
  float *x, *g, *b, *y, *m, *s;
  int64_t lx = f32(env, argv[0], &x), lg = f32(env, argv[1], &g), lb = f32(env, argv[2], &b),
          ly = f32(env, argv[3], &y), lm = f32(env, argv[4], &m), ls = f32(env, argv[5], &s);
  if (lx < 0 || lg < 0 || lb < 0 || ly < 0 || lm < 0 || ls < 0) return NULL;
  const int64_t r = num(env, argv[6]), c = num(env, argv[7]);
  double eps = 0;
  napi_get_value_double(env, argv[8], &eps);
  if (r * c > lx || r * c > ly || c > lg || c > lb || r > lm || r > ls)
    FAIL(range_error, "layerNormFwd: buffers smaller than rows x cols");
  fl_layer_norm_fwd(x, g, b, y, m, s, r, c, (float)eps);
  return NULL;
}

/* layerNormBwd(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, rows, cols) */
static napi_value LayerNormBwd(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!get_args(env, info, 10, argv)) FAIL(type_error, "layerNormBwd: expected 10 arguments");
  float *dy, *x, *g, *m, *s, *dx, *dg, *db;
  int64_t l0 = f32(env, argv[0], &dy), l1 = f32(env, argv[1], &x), l2 = f32(env, argv[2], &g),
          l3 = f32(env, argv[3], &m), l4 = f32(env, argv[4], &s), l5 = f32(env, argv[5], &dx),
          l6 = f32(env, argv[6], &dg), l7 = f32(env, argv[7], &db);
  if (l0 < 0 || l1 < 0 || l2 < 0 || l3 < 0 || l4 < 0 || l5 < 0 || l6 < 0 || l7 < 0) return NULL;
  const int64_t r = num(env, argv[8]), c = num(env, argv[9]);
  if (r * c > l0 || r * c > l1 || r * c > l5 || c > l2 || c > l6 || c > l7 || r > l3 || r > l4)
    FAIL(range_error, "layerNormBwd: buffers smaller than rows x cols");
  fl_layer_norm_bwd(dy, x, g, m, s, dx, dg, db, r, c);
  return NULL;
}

/* geluTanhBwd(dy, x, dx) */
static napi_value GeluTanhBwd(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) FAIL(type_error, "geluTanhBwd(dy, x, dx)");
  float *dy, *x, *dx;
  int64_t l0 = f32(env, argv[0], &dy), l1 = f32(env, argv[1], &x), l2 = f32(env, argv[2], &dx);
  if (l0 < 0 || l1 < 0 || l2 < 0) return NULL;
  if (l0 < l1 || l2 < l1) FAIL(range_error, "geluTanhBwd: dy and dx must be as long as x");
  fl_gelu_tanh_bwd(dy, x, dx, l1);
  return NULL;
}

/* sparseXentFwd(logits, labels, loss, probs, rows, cols) */
static napi_value SparseXentFwd(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) FAIL(type_error, "sparseXentFwd: expected 6 arguments");
  float *x, *loss, *p;
  int32_t *lab;
  int64_t lx = f32(env, argv[0], &x), ll = i32(env, argv[1], &lab), lo = f32(env, argv[2], &loss),
          lp = f32(env, argv[3], &p);
  if (lx < 0 || ll < 0 || lo < 0 || lp < 0) return NULL;
  const int64_t r = num(env, argv[4]), c = num(env, argv[5]);
  if (c < 1 || r * c > lx || r * c > lp || r > ll || r > lo) FAIL(range_error, "sparseXentFwd: buffers smaller than rows x cols");
  for (int64_t i = 0; i < r; i++)
    if (lab[i] < 0 || lab[i] >= c) FAIL(range_error, "sparseXentFwd: a label is outside [0, cols)");
  fl_sparse_xent_fwd(x, lab, loss, p, r, c);
  return NULL;
}

/* sparseXentBwd(probs, labels, dloss, dlogits, rows, cols) */
static napi_value SparseXentBwd(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) FAIL(type_error, "sparseXentBwd: expected 6 arguments");
  float *p, *dl, *dx;
  int32_t *lab;
  int64_t lp = f32(env, argv[0], &p), ll = i32(env, argv[1], &lab), ld = f32(env, argv[2], &dl),
          lx = f32(env, argv[3], &dx);
  if (lp < 0 || ll < 0 || ld < 0 || lx < 0) return NULL;
  const int64_t r = num(env, argv[4]), c = num(env, argv[5]);
  if (c < 1 || r * c > lp || r * c > lx || r > ll || r > ld) FAIL(range_error, "sparseXentBwd: buffers smaller than rows x cols");
  for (int64_t i = 0; i < r; i++)
    if (lab[i] < 0 || lab[i] >= c) FAIL(range_error, "sparseXentBwd: a label is outside [0, cols)");
  fl_sparse_xent_bwd(p, lab, dl, dx, r, c);
  return NULL;
}

/* adamw(p, g, m, v, pOut, mOut, vOut, hp): hp is a Float64Array of [lr, beta1, 1 - beta1, beta2,
 * 1 - beta2, biasCorrection1, biasCorrection2, eps, 1 - lr * weightDecay, gradScale], each rounded
 * to float32 here exactly as tfjs rounds a scalar operand. */
static napi_value AdamW(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) FAIL(type_error, "adamw(p, g, m, v, pOut, mOut, vOut, hp)");
  float *p, *g, *m, *v, *po, *mo, *vo;
  const int64_t n = f32(env, argv[0], &p);
  const int64_t l1 = f32(env, argv[1], &g), l2 = f32(env, argv[2], &m), l3 = f32(env, argv[3], &v),
                l4 = f32(env, argv[4], &po), l5 = f32(env, argv[5], &mo), l6 = f32(env, argv[6], &vo);
  if (n < 0 || l1 < 0 || l2 < 0 || l3 < 0 || l4 < 0 || l5 < 0 || l6 < 0) return NULL;
  if (l1 != n || l2 != n || l3 != n || l4 != n || l5 != n || l6 != n)
    FAIL(range_error, "adamw: parameter, gradient, moments and outputs must have the same length");
  bool is = false;
  napi_is_typedarray(env, argv[7], &is);
  napi_typedarray_type t;
  size_t len = 0;
  double *h = NULL;
  if (is) napi_get_typedarray_info(env, argv[7], &t, &len, (void **)&h, NULL, NULL);
  if (!is || t != napi_float64_array || len != 10) FAIL(type_error, "adamw: hp must be a Float64Array of 10 numbers");
  const fl_adamw_hp hp = {(float)h[0], (float)h[1], (float)h[2], (float)h[3], (float)h[4],
                          (float)h[5], (float)h[6], (float)h[7], (float)h[8], (float)h[9]};
  fl_adamw(p, g, m, v, po, mo, vo, n, &hp);
  return NULL;
}

/* sumSquares(x): sum of x[i]^2 as a double. */
static napi_value SumSquares(napi_env env, napi_callback_info info) {
  napi_value argv[1], out;
  if (!get_args(env, info, 1, argv)) FAIL(type_error, "sumSquares(x)");
  float *x;
  const int64_t n = f32(env, argv[0], &x);
  if (n < 0) return NULL;
  CHECK(napi_create_double(env, fl_sum_squares(x, n), &out));
  return out;
}

/* rowsSumSquares(x, rowLength, rows, acc): acc[u] += the float64 sum of squares of row u. */
static napi_value RowsSumSquares(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) FAIL(type_error, "rowsSumSquares(x, rowLength, rows, acc)");
  float *x;
  double *acc;
  const int64_t lx = f32(env, argv[0], &x);
  if (lx < 0) return NULL;
  const int64_t la = f64(env, argv[3], &acc);
  if (la < 0) return NULL;
  const int64_t len = num(env, argv[1]), rows = num(env, argv[2]);
  if (len < 0 || rows < 0 || len * rows > lx || rows > la) FAIL(range_error, "rowsSumSquares: buffers smaller than rows x rowLength");
  fl_rows_sum_squares(x, len, rows, acc);
  return NULL;
}

/* gridRoundAccumulate(x, rowLength, rows, factors, h, counts): counts[k] += round(factors[u] x[u][k] / h). */
static napi_value GridRoundAccumulate(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) FAIL(type_error, "gridRoundAccumulate(x, rowLength, rows, factors, h, counts)");
  float *x;
  double *factors, *counts, h = 0;
  const int64_t lx = f32(env, argv[0], &x);
  if (lx < 0) return NULL;
  const int64_t lf = f64(env, argv[3], &factors);
  if (lf < 0) return NULL;
  const int64_t lc = f64(env, argv[5], &counts);
  if (lc < 0) return NULL;
  napi_get_value_double(env, argv[4], &h);
  const int64_t len = num(env, argv[1]), rows = num(env, argv[2]);
  if (len < 0 || rows < 0 || len * rows > lx || rows > lf || len > lc) FAIL(range_error, "gridRoundAccumulate: buffers smaller than rows x rowLength");
  if (!(h > 0) || !isfinite(h)) FAIL(range_error, "gridRoundAccumulate: h must be a finite number > 0");
  fl_grid_round_accumulate(x, len, rows, factors, h, counts);
  return NULL;
}

/* copy2d(src, srcOffset, srcStride, dst, dstOffset, dstStride, rows, cols): rows runs of cols
 * floats (Slice/SplitV/Concat without a JS subarray per run). */
static napi_value Copy2d(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!get_args(env, info, 8, argv)) FAIL(type_error, "copy2d: expected 8 arguments");
  float *src, *dst;
  const int64_t ls = f32(env, argv[0], &src), ld = f32(env, argv[3], &dst);
  if (ls < 0 || ld < 0) return NULL;
  const int64_t so = num(env, argv[1]), ss = num(env, argv[2]), dof = num(env, argv[4]), ds = num(env, argv[5]);
  const int64_t rows = num(env, argv[6]), cols = num(env, argv[7]);
  if (rows < 0 || cols < 0 || so < 0 || dof < 0 || ss < 0 || ds < 0) FAIL(range_error, "copy2d: negative offset, stride or size");
  if (rows == 0 || cols == 0) return NULL;
  if (so + (rows - 1) * ss + cols > ls || dof + (rows - 1) * ds + cols > ld) FAIL(range_error, "copy2d: runs reach past the end of a buffer");
  for (int64_t r = 0; r < rows; r++) memcpy(dst + dof + r * ds, src + so + r * ss, sizeof(float) * (size_t)cols);
  return NULL;
}

/* gatherRows(x, rowLength, indices, out): out[i] = x[indices[i]] (rows of rowLength floats). */
static napi_value GatherRows(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) FAIL(type_error, "gatherRows(x, rowLength, indices, out)");
  float *x, *o;
  int32_t *idx;
  const int64_t lx = f32(env, argv[0], &x), li = i32(env, argv[2], &idx), lo = f32(env, argv[3], &o);
  if (lx < 0 || li < 0 || lo < 0) return NULL;
  const int64_t row = num(env, argv[1]);
  if (row < 0 || li * row > lo) FAIL(range_error, "gatherRows: output smaller than indices x rowLength");
  const int64_t rows = row > 0 ? lx / row : 0;
  for (int64_t i = 0; i < li; i++) {
    if (idx[i] < 0 || idx[i] >= rows) {
      char msg[128];
      snprintf(msg, sizeof(msg), "gather: index %d at position %lld is outside [0, %lld)", idx[i], (long long)i, (long long)rows);
      FAIL(range_error, msg);
    }
    memcpy(o + i * row, x + (int64_t)idx[i] * row, sizeof(float) * (size_t)row);
  }
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  fl_blas_load();
  const napi_property_descriptor props[] = {
      {"info", NULL, Info, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, Matmul, NULL, NULL, NULL, napi_default, NULL},
      {"binary", NULL, Binary, NULL, NULL, NULL, napi_default, NULL},
      {"unary", NULL, Unary, NULL, NULL, NULL, napi_default, NULL},
      {"softmax", NULL, Softmax, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxBwd", NULL, SoftmaxBwd, NULL, NULL, NULL, napi_default, NULL},
      {"causalSoftmax", NULL, CausalSoftmax, NULL, NULL, NULL, napi_default, NULL},
      {"causalMatmul", NULL, CausalMatmul, NULL, NULL, NULL, napi_default, NULL},
      {"causalSoftmaxBwd", NULL, CausalSoftmaxBwd, NULL, NULL, NULL, napi_default, NULL},
      {"reduceRows", NULL, ReduceRows, NULL, NULL, NULL, napi_default, NULL},
      {"reduceCols", NULL, ReduceCols, NULL, NULL, NULL, napi_default, NULL},
      {"transpose", NULL, Transpose, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormFwd", NULL, LayerNormFwd, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormBwd", NULL, LayerNormBwd, NULL, NULL, NULL, napi_default, NULL},
      {"geluTanhBwd", NULL, GeluTanhBwd, NULL, NULL, NULL, napi_default, NULL},
      {"sparseXentFwd", NULL, SparseXentFwd, NULL, NULL, NULL, napi_default, NULL},
      {"sparseXentBwd", NULL, SparseXentBwd, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, AdamW, NULL, NULL, NULL, napi_default, NULL},
      {"copy2d", NULL, Copy2d, NULL, NULL, NULL, napi_default, NULL},
      {"gatherRows", NULL, GatherRows, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, SumSquares, NULL, NULL, NULL, napi_default, NULL},
      {"rowsSumSquares", NULL, RowsSumSquares, NULL, NULL, NULL, napi_default, NULL},
      {"gridRoundAccumulate", NULL, GridRoundAccumulate, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
