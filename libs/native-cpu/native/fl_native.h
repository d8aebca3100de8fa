/* fedlora native CPU kernels: shared declarations.
 * All tensors are dense row-major float32 buffers owned by the caller (JS TypedArrays). */
#ifndef FL_NATIVE_H
#define FL_NATIVE_H
#include <stdint.h>

#define FL_MAX_DIMS 8

/* ---- BLAS (blas.c): OpenBLAS loaded with dlopen at run time, portable C loops otherwise ---- */
int fl_blas_load(void);                 /* 1 when a CBLAS library was found */
const char *fl_blas_name(void);         /* soname of the loaded library or "" */
void fl_blas_set_threads(int n);
/* Runs BLAS on the calling thread until _end(token) (for loops of small products). */
int fl_blas_single_thread_begin(void);
void fl_blas_single_thread_end(int token);
#define FL_SMALL_PRODUCT (1 << 21) /* M * N * K below which a batched product runs single-threaded */
int fl_blas_get_threads(void);
/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major. */
void fl_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* ---- threads for the element-wise and row kernels (parallel.c) ---- */
#define FL_GRAIN 65536 /* elements of work below which a chunk is not worth a thread */
/* Memory-bound element-wise ops (add, multiply, square, ...) run at ~0.1 ns per element, so a
 * thread created for them must get far more elements to pay for itself (tens of microseconds). */
#define FL_GRAIN_CHEAP (1 << 20)
typedef void (*fl_range_fn)(void *ctx, int64_t begin, int64_t end);
void fl_set_loop_threads(int n);
int fl_loop_threads(void);
/* Calls fn(ctx, begin, end) over [0, n) split across threads; unitWork = elements per index. */
void fl_parallel_for(int64_t n, int64_t unitWork, fl_range_fn fn, void *ctx);
/* The same with an explicit grain (elements of work per thread below which it stays serial). */
void fl_parallel_for_grain(int64_t n, int64_t unitWork, int64_t grain, fl_range_fn fn, void *ctx);

/* ---- element-wise (elementwise.c) ---- */
enum fl_binary_op { FL_ADD = 0, FL_SUB, FL_MUL, FL_DIV, FL_SQDIFF, FL_MAX, FL_MIN, FL_POW };
enum fl_unary_op {
  FL_EXP = 0, FL_LOG, FL_TANH, FL_SQRT, FL_RSQRT, FL_SQUARE, FL_NEG, FL_RECIP,
  FL_SIGMOID, FL_RELU, FL_ABS, FL_GELU_TANH
};
/* out[outShape] = a (broadcast) op b (broadcast); shapes right-aligned NumPy style. */
void fl_binary(int op, const float *a, const int64_t *aShape, int aRank, const float *b,
               const int64_t *bShape, int bRank, float *out, const int64_t *outShape, int outRank);
void fl_unary(int op, const float *x, float *out, int64_t n);

/* ---- rows, reductions, layout (rows.c) ---- */
enum fl_reduce_op { FL_RSUM = 0, FL_RMAX, FL_RMIN, FL_RMEAN, FL_RPROD };
void fl_softmax_rows(const float *x, float *out, int64_t rows, int64_t cols);
/* dx = y * (dy - sum(dy * y)) per row: the softmax Jacobian-vector product. */
void fl_softmax_bwd(const float *dy, const float *y, float *dx, int64_t rows, int64_t cols);
/* Softmax of scale * x with a causal mask: rows are queries of trailing [T, T] blocks (cols = T),
 * row r sees keys 0..r % T, later keys get 0. Backward: dx = scale * y * (dy - sum(dy * y)). */
void fl_causal_softmax(const float *x, float *out, int64_t rows, int64_t cols, float scale);
void fl_causal_softmax_bwd(const float *dy, const float *y, float *dx, int64_t rows, int64_t cols, float scale);
void fl_reduce_rows(int op, const float *x, float *out, int64_t rows, int64_t cols);
void fl_reduce_cols(int op, const float *x, float *out, int64_t rows, int64_t cols);
void fl_transpose(const float *x, const int64_t *shape, int rank, const int64_t *perm, float *out);

/* ---- fused training kernels (fused.c) ---- */
void fl_layer_norm_fwd(const float *x, const float *gamma, const float *beta, float *y, float *mean,
                       float *rstd, int64_t rows, int64_t cols, float eps);
void fl_layer_norm_bwd(const float *dy, const float *x, const float *gamma, const float *mean,
                       const float *rstd, float *dx, float *dgamma, float *dbeta, int64_t rows,
                       int64_t cols);
void fl_gelu_tanh_bwd(const float *dy, const float *x, float *dx, int64_t n);
/* Sparse softmax cross-entropy: loss[r] = logsumexp(x[r]) - x[r][label[r]]; also stores softmax. */
void fl_sparse_xent_fwd(const float *logits, const int32_t *labels, float *loss, float *probs,
                        int64_t rows, int64_t cols);
/* dlogits[r] = dloss[r] * (probs[r] - onehot(label[r])) */
void fl_sparse_xent_bwd(const float *probs, const int32_t *labels, const float *dloss,
                        float *dlogits, int64_t rows, int64_t cols);

/* ---- DP-SGD's clipped sum on the noise grid (grid.c) ---- */
/* acc[u] += sum_k x[u][k]^2 for rows u of rowLength floats, in float64, one by one in k order. */
void fl_rows_sum_squares(const float *x, int64_t rowLength, int64_t rows, double *acc);
/* counts[k] += round(factors[u] x[u][k] / h) over rows u in order, rounding as JS Math.round. */
void fl_grid_round_accumulate(const float *x, int64_t rowLength, int64_t rows, const double *factors,
                              double h, double *counts);

/* ---- optimizer (optim.c) ---- */
typedef struct {
  float lr, beta1, oneMinusBeta1, beta2, oneMinusBeta2, biasCorrection1, biasCorrection2, eps;
  float decay;     /* 1 - lr * weightDecay */
  float gradScale; /* gradients are multiplied by this first (averaging, clipping) */
} fl_adamw_hp;
/* One AdamW step; the outputs may alias the inputs (in-place update). */
void fl_adamw(const float *p, const float *g, const float *m, const float *v, float *pOut, float *mOut,
              float *vOut, int64_t n, const fl_adamw_hp *hp);
/* sum(x^2), accumulated in double across blocks. */
double fl_sum_squares(const float *x, int64_t n);
#endif
