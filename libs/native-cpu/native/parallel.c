/* A minimal parallel-for for the element-wise and row kernels: the range is cut into one chunk
 * per thread, the calling thread runs the first, short-lived pthreads the rest. Thread creation
 * costs tens of microseconds, so ranges below FL_GRAIN elements of work per thread stay serial.
 * The count follows FEDLORA_NUM_THREADS through setThreads (shared with OpenBLAS). Worker threads
 * only touch raw buffers; no N-API call happens off the main thread. */
#include <pthread.h>
#include "fl_native.h"

static int g_loop_threads = 1;

void fl_set_loop_threads(int n) { g_loop_threads = n < 1 ? 1 : (n > 64 ? 64 : n); }
int fl_loop_threads(void) { return g_loop_threads; }

typedef struct {
  fl_range_fn fn;
  void *ctx;
  int64_t begin, end;
} chunk_t;

static void *run_chunk(void *arg) {
  chunk_t *c = (chunk_t *)arg;
  c->fn(c->ctx, c->begin, c->end);
  return NULL;
}

void fl_parallel_for(int64_t n, int64_t unitWork, fl_range_fn fn, void *ctx) {
  fl_parallel_for_grain(n, unitWork, FL_GRAIN, fn, ctx);
}

void fl_parallel_for_grain(int64_t n, int64_t unitWork, int64_t grain, fl_range_fn fn, void *ctx) {
  int64_t t = g_loop_threads;
  const int64_t work = n * (unitWork < 1 ? 1 : unitWork);
  if (t > work / grain) t = work / grain;
  if (t > n) t = n;
  if (t <= 1) { fn(ctx, 0, n); return; }
  chunk_t chunks[64];
  pthread_t tids[64];
  int started[64] = {0};
  const int64_t per = (n + t - 1) / t;
  for (int64_t i = 0; i < t; i++) {
    chunks[i].fn = fn;
    chunks[i].ctx = ctx;
    chunks[i].begin = i * per < n ? i * per : n;
    chunks[i].end = (i + 1) * per < n ? (i + 1) * per : n;
  }
  for (int64_t i = 1; i < t; i++) started[i] = pthread_create(&tids[i], NULL, run_chunk, &chunks[i]) == 0;
  fn(ctx, chunks[0].begin, chunks[0].end);
  for (int64_t i = 1; i < t; i++) {
    if (started[i]) pthread_join(tids[i], NULL);
    else fn(ctx, chunks[i].begin, chunks[i].end); /* could not start a thread: do it here */
  }
}
