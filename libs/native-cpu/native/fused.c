/* Fused training kernels: layer normalisation (Ba, Kiros, Hinton 2016) and sparse softmax
 * cross-entropy, each one pass over the data instead of the 10-20 broadcasting ops (and their
 * saved intermediates) that the op-by-op autodiff graph needs. */
#include <math.h>
#include <string.h>
#include "fl_native.h"
#include "vmath.h"

/* y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps), biased variance per row (two
 * passes: mean, then squared deviations). Sums run in 8 float lanes so they vectorise. */
FL_CLONES static void layer_norm_fwd_serial(const float *x, const float *gamma, const float *beta, float *y,
                                            float *mean, float *rstd, int64_t rows, int64_t cols, float eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    const float m = fl_row_sum(xr, cols) / (float)cols;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int k = 0; k < 8; k++) { const float d = xr[j + k] - m; acc[k] += d * d; }
    float v = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < cols; j++) { const float d = xr[j] - m; v += d * d; }
    const float rs = 1.0f / sqrtf(v / (float)cols + eps);
    for (j = 0; j < cols; j++) yr[j] = (xr[j] - m) * rs * gamma[j] + beta[j];
    mean[r] = m;
    rstd[r] = rs;
  }
}

/* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma;
 * dgamma = sum_rows dy * xhat; dbeta = sum_rows dy. dgamma/dbeta may be NULL. */
FL_CLONES void fl_layer_norm_bwd(const float *dy, const float *x, const float *gamma, const float *mean,
                       const float *rstd, float *dx, float *dgamma, float *dbeta, int64_t rows,
                       int64_t cols) {
  if (dgamma) memset(dgamma, 0, sizeof(float) * (size_t)cols);
  if (dbeta) memset(dbeta, 0, sizeof(float) * (size_t)cols);
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * cols, *xr = x + r * cols;
    float *dxr = dx + r * cols;
    const float m = mean[r], rs = rstd[r];
    float ag[8] = {0, 0, 0, 0, 0, 0, 0, 0}, agx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int k = 0; k < 8; k++) {
        const float gj = dyr[j + k] * gamma[j + k];
        ag[k] += gj;
        agx[k] += gj * ((xr[j + k] - m) * rs);
      }
    float sg = ((ag[0] + ag[1]) + (ag[2] + ag[3])) + ((ag[4] + ag[5]) + (ag[6] + ag[7]));
    float sgx = ((agx[0] + agx[1]) + (agx[2] + agx[3])) + ((agx[4] + agx[5]) + (agx[6] + agx[7]));
    for (; j < cols; j++) {
      const float gj = dyr[j] * gamma[j];
      sg += gj;
      sgx += gj * ((xr[j] - m) * rs);
    }
    const float mg = sg / (float)cols, mgx = sgx / (float)cols;
    for (j = 0; j < cols; j++) {
      const float xh = (xr[j] - m) * rs;
      dxr[j] = rs * (dyr[j] * gamma[j] - mg - xh * mgx);
    }
    if (dgamma)
      for (int64_t j = 0; j < cols; j++) dgamma[j] += dyr[j] * (xr[j] - m) * rs;
    if (dbeta)
      for (int64_t j = 0; j < cols; j++) dbeta[j] += dyr[j];
  }
}

FL_CLONES static void xent_fwd_serial(const float *logits, const int32_t *labels, float *loss, float *probs,
                                      int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = logits + r * cols;
    float *pr = probs + r * cols;
    const float m = fl_row_max_fast(xr, cols);
    for (int64_t j = 0; j < cols; j++) pr[j] = fl_expf(xr[j] - m);
    const double s = fl_row_sum(pr, cols);
    const float inv = (float)(1.0 / s);
    for (int64_t j = 0; j < cols; j++) pr[j] *= inv;
    loss[r] = (float)(log(s) + (double)m - (double)xr[labels[r]]);
  }
}

FL_CLONES static void xent_bwd_serial(const float *probs, const int32_t *labels, const float *dloss,
                                      float *dlogits, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *pr = probs + r * cols;
    float *dr = dlogits + r * cols;
    const float g = dloss[r];
    for (int64_t j = 0; j < cols; j++) dr[j] = g * pr[j];
    dr[labels[r]] -= g;
  }
}

typedef struct {
  const float *x, *gamma, *beta;
  const int32_t *labels;
  float *y, *mean, *rstd;
  int64_t cols;
  float eps;
} fused_ctx;

static void ln_fwd_range(void *p, int64_t r0, int64_t r1) {
  const fused_ctx *c = (const fused_ctx *)p;
  layer_norm_fwd_serial(c->x + r0 * c->cols, c->gamma, c->beta, c->y + r0 * c->cols, c->mean + r0, c->rstd + r0,
                        r1 - r0, c->cols, c->eps);
}

void fl_layer_norm_fwd(const float *x, const float *gamma, const float *beta, float *y, float *mean,
                       float *rstd, int64_t rows, int64_t cols, float eps) {
  fused_ctx c = {x, gamma, beta, NULL, y, mean, rstd, cols, eps};
  fl_parallel_for(rows, cols, ln_fwd_range, &c);
}

/* x: logits (fwd) or probs (bwd); y: probs (fwd) or dlogits (bwd); mean: loss (fwd) or dloss (bwd). */
static void xent_fwd_range(void *p, int64_t r0, int64_t r1) {
  const fused_ctx *c = (const fused_ctx *)p;
  xent_fwd_serial(c->x + r0 * c->cols, c->labels + r0, c->mean + r0, c->y + r0 * c->cols, r1 - r0, c->cols);
}

static void xent_bwd_range(void *p, int64_t r0, int64_t r1) {
  const fused_ctx *c = (const fused_ctx *)p;
  xent_bwd_serial(c->x + r0 * c->cols, c->labels + r0, c->mean + r0, c->y + r0 * c->cols, r1 - r0, c->cols);
}

void fl_sparse_xent_fwd(const float *logits, const int32_t *labels, float *loss, float *probs,
                        int64_t rows, int64_t cols) {
  fused_ctx c = {logits, NULL, NULL, labels, probs, loss, NULL, cols, 0.0f};
  fl_parallel_for(rows, cols, xent_fwd_range, &c);
}

void fl_sparse_xent_bwd(const float *probs, const int32_t *labels, const float *dloss,
                        float *dlogits, int64_t rows, int64_t cols) {
  fused_ctx c = {probs, NULL, NULL, labels, dlogits, (float *)dloss, NULL, cols, 0.0f};
  fl_parallel_for(rows, cols, xent_bwd_range, &c);
}
