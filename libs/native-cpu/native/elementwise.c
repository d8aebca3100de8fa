/* Element-wise kernels with NumPy broadcasting.
 *
 * Broadcasting is resolved once into per-input strides (0 on broadcast axes); adjacent axes that
 * are contiguous for both inputs are merged, so the common cases (same shape, bias over rows,
 * per-row statistic over columns, scalar) become one or two flat loops the compiler vectorises. */
#include <math.h>
#include <string.h>
#include "fl_native.h"
#include "vmath.h"

static inline float fl_max(float x, float y) { return (x >= y || x != x) ? x : y; }
static inline float fl_min(float x, float y) { return (x <= y || x != x) ? x : y; }

#define BIN_LOOPS(EXPR)                                                                   \
  if (ia == 1 && ib == 1) {                                                               \
    for (int64_t i = 0; i < n; i++) { const float x = pa[i], y = pb[i]; po[i] = (EXPR); } \
  } else if (ia == 1 && ib == 0) {                                                        \
    const float y = pb[0];                                                                \
    for (int64_t i = 0; i < n; i++) { const float x = pa[i]; po[i] = (EXPR); }           \
  } else if (ia == 0 && ib == 1) {                                                        \
    const float x = pa[0];                                                                \
    for (int64_t i = 0; i < n; i++) { const float y = pb[i]; po[i] = (EXPR); }           \
  } else {                                                                                \
    for (int64_t i = 0; i < n; i++) {                                                     \
      const float x = pa[i * ia], y = pb[i * ib];                                         \
      po[i] = (EXPR);                                                                     \
    }                                                                                     \
  }

FL_CLONES static void binary_inner(int op, const float *pa, int64_t ia, const float *pb, int64_t ib, float *po,
                         int64_t n) {
  switch (op) {
    case FL_ADD: BIN_LOOPS(x + y); break;
    case FL_SUB: BIN_LOOPS(x - y); break;
    case FL_MUL: BIN_LOOPS(x * y); break;
    case FL_DIV: BIN_LOOPS(x / y); break;
    case FL_SQDIFF: BIN_LOOPS((x - y) * (x - y)); break;
    case FL_MAX: BIN_LOOPS(fl_max(x, y)); break;
    case FL_MIN: BIN_LOOPS(fl_min(x, y)); break;
    case FL_POW:
      if (ib == 0 && pb[0] == 2.0f) { BIN_LOOPS(x * x); }
      else if (ib == 0 && pb[0] == 1.0f) { BIN_LOOPS(x); }
      else if (ib == 0 && pb[0] == 3.0f) { BIN_LOOPS(x * x * x); }
      else if (ib == 0 && pb[0] == 0.5f) { BIN_LOOPS(sqrtf(x)); }
      else { BIN_LOOPS(powf(x, y)); }
      break;
    default: break;
  }
}

/* Right-aligned strides of an input broadcast to `rank` output axes. */
static void broadcast_strides(const int64_t *shape, int r, int rank, int64_t *strides) {
  int64_t st = 1;
  for (int d = rank - 1; d >= 0; d--) {
    const int sd = d - (rank - r);
    if (sd < 0) { strides[d] = 0; continue; }
    strides[d] = shape[sd] == 1 ? 0 : st;
    st *= shape[sd];
  }
}

typedef struct {
  int op, n;
  const float *a, *b;
  float *out;
  const int64_t *shape, *xa, *xb;
} binary_ctx;

/* Outer indices [o0, o1) of the collapsed loop nest (axis 0 innermost). */
static void binary_range(void *p, int64_t o0, int64_t o1) {
  const binary_ctx *c = (const binary_ctx *)p;
  const int64_t inner = c->shape[0];
  int64_t idx[FL_MAX_DIMS] = {0};
  int64_t oa = 0, ob = 0, rem = o0;
  for (int d = 1; d < c->n; d++) {
    idx[d] = rem % c->shape[d];
    rem /= c->shape[d];
    oa += idx[d] * c->xa[d];
    ob += idx[d] * c->xb[d];
  }
  for (int64_t o = o0; o < o1; o++) {
    binary_inner(c->op, c->a + oa, c->xa[0], c->b + ob, c->xb[0], c->out + o * inner, inner);
    for (int d = 1; d < c->n; d++) {
      idx[d]++; oa += c->xa[d]; ob += c->xb[d];
      if (idx[d] < c->shape[d]) break;
      oa -= c->xa[d] * c->shape[d]; ob -= c->xb[d] * c->shape[d]; idx[d] = 0;
    }
  }
}

/* A flat (fully merged) operation split along its single axis. */
static void binary_flat_range(void *p, int64_t i0, int64_t i1) {
  const binary_ctx *c = (const binary_ctx *)p;
  binary_inner(c->op, c->a + i0 * c->xa[0], c->xa[0], c->b + i0 * c->xb[0], c->xb[0], c->out + i0, i1 - i0);
}

void fl_binary(int op, const float *a, const int64_t *aShape, int aRank, const float *b,
               const int64_t *bShape, int bRank, float *out, const int64_t *outShape, int outRank) {
  int64_t sa[FL_MAX_DIMS], sb[FL_MAX_DIMS];
  broadcast_strides(aShape, aRank, outRank, sa);
  broadcast_strides(bShape, bRank, outRank, sb);
  /* Drop unit axes, then merge axes contiguous for both inputs (walking from the inside out). */
  int64_t shape[FL_MAX_DIMS], xa[FL_MAX_DIMS], xb[FL_MAX_DIMS];
  int n = 0;
  for (int d = outRank - 1; d >= 0; d--) {
    if (outShape[d] == 1) continue;
    if (n > 0 && sa[d] == xa[n - 1] * shape[n - 1] && sb[d] == xb[n - 1] * shape[n - 1]) {
      shape[n - 1] *= outShape[d];
      continue;
    }
    shape[n] = outShape[d]; xa[n] = sa[d]; xb[n] = sb[d]; n++;
  }
  if (n == 0) { binary_inner(op, a, 1, b, 1, out, 1); return; }
  binary_ctx c = {op, n, a, b, out, shape, xa, xb};
  /* pow with a general exponent calls powf per element: worth threads sooner than add/mul. */
  const int64_t grain = op == FL_POW ? FL_GRAIN : FL_GRAIN_CHEAP;
  if (n == 1) { fl_parallel_for_grain(shape[0], 1, grain, binary_flat_range, &c); return; }
  int64_t outer = 1;
  for (int d = 1; d < n; d++) outer *= shape[d];
  fl_parallel_for_grain(outer, shape[0], grain, binary_range, &c);
}

#define GELU_C 0.7978845608028654f /* sqrt(2/pi) */

FL_CLONES static void unary_serial(int op, const float *x, float *out, int64_t n) {
  switch (op) {
    case FL_EXP: for (int64_t i = 0; i < n; i++) out[i] = fl_expf(x[i]); break;
    case FL_LOG: for (int64_t i = 0; i < n; i++) out[i] = logf(x[i]); break;
    case FL_TANH: for (int64_t i = 0; i < n; i++) out[i] = fl_tanhf(x[i]); break;
    case FL_SQRT: for (int64_t i = 0; i < n; i++) out[i] = sqrtf(x[i]); break;
    case FL_RSQRT: for (int64_t i = 0; i < n; i++) out[i] = 1.0f / sqrtf(x[i]); break;
    case FL_SQUARE: for (int64_t i = 0; i < n; i++) out[i] = x[i] * x[i]; break;
    case FL_NEG: for (int64_t i = 0; i < n; i++) out[i] = -x[i]; break;
    case FL_RECIP: for (int64_t i = 0; i < n; i++) out[i] = 1.0f / x[i]; break;
    case FL_SIGMOID: for (int64_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + fl_expf(-x[i])); break;
    case FL_RELU: for (int64_t i = 0; i < n; i++) out[i] = x[i] < 0.0f ? 0.0f : x[i]; break;
    case FL_ABS: for (int64_t i = 0; i < n; i++) out[i] = fabsf(x[i]); break;
    case FL_GELU_TANH:
      for (int64_t i = 0; i < n; i++) {
        const float v = x[i];
        out[i] = 0.5f * v * (1.0f + fl_tanhf(GELU_C * (v + 0.044715f * v * v * v)));
      }
      break;
    default: break;
  }
}

FL_CLONES static void gelu_bwd_serial(const float *dy, const float *x, float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float t = fl_tanhf(GELU_C * (v + 0.044715f * v * v * v));
    const float dt = (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * v * v);
    dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * dt);
  }
}

typedef struct {
  int op;
  const float *x, *dy;
  float *out;
} unary_ctx;

static void unary_range(void *p, int64_t i0, int64_t i1) {
  const unary_ctx *c = (const unary_ctx *)p;
  unary_serial(c->op, c->x + i0, c->out + i0, i1 - i0);
}

static void gelu_bwd_range(void *p, int64_t i0, int64_t i1) {
  const unary_ctx *c = (const unary_ctx *)p;
  gelu_bwd_serial(c->dy + i0, c->x + i0, c->out + i0, i1 - i0);
}

void fl_unary(int op, const float *x, float *out, int64_t n) {
  unary_ctx c = {op, x, NULL, out};
  const int cheap = op == FL_SQUARE || op == FL_NEG || op == FL_RELU || op == FL_ABS;
  fl_parallel_for_grain(n, 1, cheap ? FL_GRAIN_CHEAP : FL_GRAIN, unary_range, &c);
}

void fl_gelu_tanh_bwd(const float *dy, const float *x, float *dx, int64_t n) {
  unary_ctx c = {0, x, dy, dx};
  fl_parallel_for(n, 1, gelu_bwd_range, &c);
}
