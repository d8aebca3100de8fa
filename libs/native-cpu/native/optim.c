/* Fused optimizer kernels. One AdamW step over a parameter tensor is ~14 element-wise tfjs ops (each
 * a kernel dispatch and a temporary); here it is one pass. Every operation is rounded to float32
 * in the same order as the tfjs-op composite in src/optim-ops.ts, and the file is compiled without
 * FMA contraction (-ffp-contract=off), so the native and pure-JS paths give bit-identical results. */
#include <math.h>
#include "fl_native.h"
#include "vmath.h"

typedef struct {
  const float *p, *g, *m, *v;
  float *pOut, *mOut, *vOut;
  fl_adamw_hp hp;
} adamw_ctx;

/* AdamW (Loshchilov & Hutter 2019, Algorithm 2, lines 6-12) in torch.optim.AdamW's order:
 *   g' = s g;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2;
 *   p' = p (1 - lr wd) - lr (m' / bc1) / (sqrt(v' / bc2) + eps),  bc_i = 1 - b_i^t. */
FL_CLONES static void adamw_serial(const adamw_ctx *c, int64_t i0, int64_t i1) {
  const fl_adamw_hp h = c->hp;
  for (int64_t i = i0; i < i1; i++) {
    const float g = c->g[i] * h.gradScale;
    const float m = c->m[i] * h.beta1 + g * h.oneMinusBeta1;
    const float g2 = g * g;
    const float v = c->v[i] * h.beta2 + g2 * h.oneMinusBeta2;
    const float denom = sqrtf(v / h.biasCorrection2) + h.eps;
    const float update = (m / h.biasCorrection1) / denom;
    c->pOut[i] = c->p[i] * h.decay - update * h.lr;
    c->mOut[i] = m;
    c->vOut[i] = v;
  }
}

static void adamw_range(void *p, int64_t i0, int64_t i1) { adamw_serial((const adamw_ctx *)p, i0, i1); }

void fl_adamw(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut,
              float *vOut, int64_t n, const fl_adamw_hp *hp) {
  adamw_ctx c = {p, g, m, v, pOut, mOut, vOut, *hp};
  fl_parallel_for(n, 8, adamw_range, &c);
}

typedef struct {
  const float *x;
  double *partial;
  int64_t chunk;
} sumsq_ctx;

/* Sum of squares in 8 float lanes per block of 4096, blocks added in double: close to the exact
 * value whatever the length, and vectorised without -ffast-math. */
FL_CLONES static double sumsq_serial(const float *x, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += 4096) {
    const int64_t e = b + 4096 < n ? b + 4096 : n;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = b;
    for (; j + 8 <= e; j += 8)
      for (int k = 0; k < 8; k++) acc[k] += x[j + k] * x[j + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < e; j++) s += x[j] * x[j];
    total += s;
  }
  return total;
}

double fl_sum_squares(const float *x, int64_t n) { return sumsq_serial(x, n); }
