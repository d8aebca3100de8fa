/* DP-SGD's clipped sum on the noise grid (libs/privacy grid-clipped-sum.ts), the host work of a
 * private step: per example, the float64 sum of squares of its float32 gradient, then
 * round(c_u x / h) summed over the examples as exact integers. Both give the same bits as the
 * JS loops they replace (libs/privacy `jsGridSumKernels`; src/grid-sum-ops.test.ts compares):
 * - a row's squares are added one by one in index order, continuing the running sum of the
 *   previous tensors (`acc`), as the JS loop does (no reassociation: -ffp-contract=off, no
 *   -ffast-math);
 * - c_u x / h is one float64 multiply and one divide, as in JS, then rounded as JS Math.round
 *   does: to the nearest integer, ties toward +infinity;
 * - the counts are integers below 2^53 (GridClippedSum bounds them), so their sums are exact in
 *   any order; each coordinate still adds its examples in row order.
 * Rows (sums of squares) and coordinates (counts) are split across threads; no two threads write
 * the same output. */
#include <math.h>
#include "fl_native.h"

#define TWO52 4503599627370496.0

/* JS Math.round: nearest integer, ties toward +infinity (ECMA-262 Math.round), without branches
 * so that the loop vectorises (a floor() and compare per value cost ten times more on random
 * data: libm calls and mispredicted branches). For |v| < 2^52, (v + s) - s with s = +-2^52 is v
 * rounded to the nearest integer n, ties to even (the default rounding mode; -ffp-contract=off
 * and no -ffast-math keep the two operations), and v - n is exact; a tie that went down
 * (v - n = 1/2) goes up instead, one that went up (v - n = -1/2) is already toward +infinity.
 * Beyond 2^52 every double is an integer and is returned as is (so are NaN and infinities). */
static inline double js_round(double v) {
  const double s = v < 0 ? -TWO52 : TWO52;
  const double n = (v + s) - s;
  const double r = n + (v - n == 0.5 ? 1.0 : 0.0);
  return fabs(v) < TWO52 ? r : v;
}

typedef struct {
  const float *x;
  int64_t rowLength;
  double *acc;
} sumsq_ctx;

static void sumsq_range(void *p, int64_t begin, int64_t end) {
  const sumsq_ctx *c = (const sumsq_ctx *)p;
  const int64_t n = c->rowLength;
  double *restrict acc = c->acc;
  for (int64_t u = begin; u < end; u++) {
    const float *restrict row = c->x + u * n;
    double s = acc[u];
    for (int64_t k = 0; k < n; k++) {
      const double v = (double)row[k];
      s += v * v;
    }
    acc[u] = s;
  }
}

void fl_rows_sum_squares(const float *x, int64_t rowLength, int64_t rows, double *acc) {
  sumsq_ctx c = {x, rowLength, acc};
  fl_parallel_for(rows, rowLength, sumsq_range, &c);
}

typedef struct {
  const float *x;
  int64_t rowLength, rows;
  const double *factors;
  double h;
  double *counts;
} round_ctx;

/* Locals and restrict: the counts written here alias neither the rows nor the context. */
static void round_range(void *p, int64_t begin, int64_t end) {
  const round_ctx *c = (const round_ctx *)p;
  const int64_t n = c->rowLength, rows = c->rows;
  const double h = c->h;
  double *restrict counts = c->counts;
  for (int64_t u = 0; u < rows; u++) {
    const float *restrict row = c->x + u * n;
    const double f = c->factors[u];
    for (int64_t k = begin; k < end; k++) counts[k] += js_round((f * (double)row[k]) / h);
  }
}

void fl_grid_round_accumulate(const float *x, int64_t rowLength, int64_t rows, const double *factors,
                              double h, double *counts) {
  round_ctx c = {x, rowLength, rows, factors, h, counts};
  fl_parallel_for(rowLength, rows, round_range, &c);
}
