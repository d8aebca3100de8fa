/* Row-wise kernels: softmax, reductions over inner or outer axes, and transposition.
 * Reductions accumulate in 8 float lanes so the compiler vectorises them without -ffast-math. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "fl_native.h"
#include "vmath.h"

static float row_max(const float *x, int64_t n) {
  float m = x[0];
  for (int64_t j = 1; j < n; j++) m = (x[j] > m || x[j] != x[j]) ? x[j] : m;
  return m;
}

static float row_min(const float *x, int64_t n) {
  float m = x[0];
  for (int64_t j = 1; j < n; j++) m = (x[j] < m || x[j] != x[j]) ? x[j] : m;
  return m;
}

FL_CLONES static void softmax_serial(const float *x, float *out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    const float m = fl_row_max_fast(xr, cols);
    for (int64_t j = 0; j < cols; j++) o[j] = fl_expf(xr[j] - m);
    const float inv = 1.0f / fl_row_sum(o, cols);
    for (int64_t j = 0; j < cols; j++) o[j] *= inv;
  }
}

FL_CLONES static void softmax_bwd_serial(const float *dy, const float *y, float *dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * cols, *yr = y + r * cols;
    float *o = dx + r * cols;
    for (int64_t j = 0; j < cols; j++) o[j] = dyr[j] * yr[j];
    const float s = fl_row_sum(o, cols);
    for (int64_t j = 0; j < cols; j++) o[j] = yr[j] * (dyr[j] - s);
  }
}

/* Causal softmax of scale * x over rows of a trailing [T, T] block: row r is query r % T and sees
 * keys 0..r % T; later keys get exactly 0 (what softmax(scale * x + M) gives in float32 with an
 * additive mask M of -1e9, as exp underflows to 0), without reading or exponentiating them. */
FL_CLONES static void causal_softmax_serial(const float *x, float *out, int64_t r0, int64_t r1, int64_t cols, float scale) {
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    const int64_t n = r % cols + 1;
    float m = xr[0];
    for (int64_t j = 1; j < n; j++) m = xr[j] > m ? xr[j] : m;
    m *= scale;
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
      o[j] = fl_expf(scale * xr[j] - m);
      sum += o[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) o[j] *= inv;
    for (int64_t j = n; j < cols; j++) o[j] = 0.0f;
  }
}

/* dx = scale * y * (dy - sum(dy * y)) over each row's visible keys, 0 for the masked ones. */
FL_CLONES static void causal_softmax_bwd_serial(const float *dy, const float *y, float *dx, int64_t r0, int64_t r1, int64_t cols, float scale) {
  for (int64_t r = r0; r < r1; r++) {
    const float *dyr = dy + r * cols, *yr = y + r * cols;
    float *o = dx + r * cols;
    const int64_t n = r % cols + 1;
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += dyr[j] * yr[j];
    for (int64_t j = 0; j < n; j++) o[j] = scale * yr[j] * (dyr[j] - s);
    for (int64_t j = n; j < cols; j++) o[j] = 0.0f;
  }
}

FL_CLONES void fl_reduce_rows(int op, const float *x, float *out, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    switch (op) {
      case FL_RSUM: out[r] = fl_row_sum(xr, cols); break;
      case FL_RMEAN: out[r] = fl_row_sum(xr, cols) / (float)cols; break;
      case FL_RMAX: out[r] = row_max(xr, cols); break;
      case FL_RMIN: out[r] = row_min(xr, cols); break;
      case FL_RPROD: {
        float p = 1.0f;
        for (int64_t j = 0; j < cols; j++) p *= xr[j];
        out[r] = p;
        break;
      }
      default: break;
    }
  }
}

FL_CLONES void fl_reduce_cols(int op, const float *x, float *out, int64_t rows, int64_t cols) {
  memcpy(out, x, sizeof(float) * (size_t)cols);
  for (int64_t r = 1; r < rows; r++) {
    const float *xr = x + r * cols;
    switch (op) {
      case FL_RSUM:
      case FL_RMEAN: for (int64_t j = 0; j < cols; j++) out[j] += xr[j]; break;
      case FL_RMAX: for (int64_t j = 0; j < cols; j++) out[j] = (xr[j] > out[j] || xr[j] != xr[j]) ? xr[j] : out[j]; break;
      case FL_RMIN: for (int64_t j = 0; j < cols; j++) out[j] = (xr[j] < out[j] || xr[j] != xr[j]) ? xr[j] : out[j]; break;
      case FL_RPROD: for (int64_t j = 0; j < cols; j++) out[j] *= xr[j]; break;
      default: break;
    }
  }
  if (op == FL_RMEAN) {
    const float inv = 1.0f / (float)rows;
    for (int64_t j = 0; j < cols; j++) out[j] *= inv;
  }
}

/* Batched 2-D transpose [B, R, C] -> [B, C, R] in 32x32 tiles to stay in cache. */
static void transpose_2d(const float *x, float *out, int64_t batch, int64_t R, int64_t C) {
  const int64_t T = 32;
  for (int64_t b = 0; b < batch; b++) {
    const float *xb = x + b * R * C;
    float *ob = out + b * R * C;
    for (int64_t r0 = 0; r0 < R; r0 += T)
      for (int64_t c0 = 0; c0 < C; c0 += T) {
        const int64_t r1 = r0 + T < R ? r0 + T : R, c1 = c0 + T < C ? c0 + T : C;
        for (int64_t r = r0; r < r1; r++)
          for (int64_t c = c0; c < c1; c++) ob[c * R + r] = xb[r * C + c];
      }
  }
}

void fl_transpose(const float *x, const int64_t *shape, int rank, const int64_t *perm, float *out) {
  /* Drop unit axes and merge input axes that stay adjacent and in order in the output. */
  int64_t keep[FL_MAX_DIMS], newIndex[FL_MAX_DIMS];
  int k = 0;
  int64_t total = 1;
  for (int d = 0; d < rank; d++) {
    total *= shape[d];
    newIndex[d] = -1;
    if (shape[d] != 1) { newIndex[d] = k; keep[k++] = d; }
  }
  if (total == 0) return;
  int64_t p[FL_MAX_DIMS]; /* output order over kept input axes (indices into keep) */
  int pn = 0;
  for (int d = 0; d < rank; d++)
    if (newIndex[perm[d]] >= 0) p[pn++] = newIndex[perm[d]];
  /* Groups: consecutive output axes that are consecutive input axes. */
  int64_t gStart[FL_MAX_DIMS], gLen[FL_MAX_DIMS];
  int g = 0;
  for (int i = 0; i < pn; i++) {
    if (g > 0 && p[i] == gStart[g - 1] + gLen[g - 1]) { gLen[g - 1]++; continue; }
    gStart[g] = p[i]; gLen[g] = 1; g++;
  }
  if (g <= 1) { memcpy(out, x, sizeof(float) * (size_t)total); return; }
  /* Collapsed input: axes are groups sorted by their input position. */
  int64_t gSize[FL_MAX_DIMS];
  for (int i = 0; i < g; i++) {
    gSize[i] = 1;
    for (int j = 0; j < gLen[i]; j++) gSize[i] *= shape[keep[gStart[i] + j]];
  }
  int64_t inStride[FL_MAX_DIMS]; /* stride in the input of output group i */
  for (int i = 0; i < g; i++) {
    int64_t st = 1;
    for (int j = 0; j < g; j++)
      if (gStart[j] > gStart[i]) st *= gSize[j];
    inStride[i] = st;
  }
  /* Batched 2-D swap of the last two groups with the leading ones in order. */
  int leadingInOrder = 1;
  for (int i = 0; i + 2 < g; i++)
    if (!(gStart[i] < gStart[i + 1])) leadingInOrder = 0;
  if (leadingInOrder && gStart[g - 1] < gStart[g - 2] && (g < 3 || gStart[g - 3] < gStart[g - 1])) {
    const int64_t R = gSize[g - 1], C = gSize[g - 2];
    transpose_2d(x, out, total / (R * C), R, C);
    return;
  }
  const int64_t inner = gSize[g - 1], innerStride = inStride[g - 1];
  int64_t idx[FL_MAX_DIMS] = {0};
  int64_t off = 0;
  for (int64_t o = 0; o < total; o += inner) {
    float *po = out + o;
    const float *px = x + off;
    if (innerStride == 1) memcpy(po, px, sizeof(float) * (size_t)inner);
    else for (int64_t i = 0; i < inner; i++) po[i] = px[i * innerStride];
    for (int d = g - 2; d >= 0; d--) {
      idx[d]++; off += inStride[d];
      if (idx[d] < gSize[d]) break;
      off -= inStride[d] * gSize[d]; idx[d] = 0;
    }
  }
}

typedef struct {
  const float *x, *y;
  float *out;
  int64_t cols;
} rows_ctx;

static void softmax_range(void *p, int64_t r0, int64_t r1) {
  const rows_ctx *c = (const rows_ctx *)p;
  softmax_serial(c->x + r0 * c->cols, c->out + r0 * c->cols, r1 - r0, c->cols);
}

static void softmax_bwd_range(void *p, int64_t r0, int64_t r1) {
  const rows_ctx *c = (const rows_ctx *)p;
  softmax_bwd_serial(c->x + r0 * c->cols, c->y + r0 * c->cols, c->out + r0 * c->cols, r1 - r0, c->cols);
}

void fl_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols) {
  rows_ctx c = {x, NULL, out, cols};
  fl_parallel_for(rows, cols, softmax_range, &c);
}

void fl_softmax_bwd(const float *dy, const float *y, float *dx, int64_t rows, int64_t cols) {
  rows_ctx c = {dy, y, dx, cols};
  fl_parallel_for(rows, cols, softmax_bwd_range, &c);
}

typedef struct {
  const float *x, *y;
  float *out;
  int64_t cols;
  float scale;
} causal_ctx;

static void causal_softmax_range(void *p, int64_t r0, int64_t r1) {
  const causal_ctx *c = (const causal_ctx *)p;
  causal_softmax_serial(c->x, c->out, r0, r1, c->cols, c->scale);
}

static void causal_softmax_bwd_range(void *p, int64_t r0, int64_t r1) {
  const causal_ctx *c = (const causal_ctx *)p;
  causal_softmax_bwd_serial(c->x, c->y, c->out, r0, r1, c->cols, c->scale);
}

void fl_causal_softmax(const float *x, float *out, int64_t rows, int64_t cols, float scale) {
  causal_ctx c = {x, NULL, out, cols, scale};
  fl_parallel_for(rows, cols, causal_softmax_range, &c);
}

void fl_causal_softmax_bwd(const float *dy, const float *y, float *dx, int64_t rows, int64_t cols, float scale) {
  causal_ctx c = {dy, y, dx, cols, scale};
  fl_parallel_for(rows, cols, causal_softmax_bwd_range, &c);
}
