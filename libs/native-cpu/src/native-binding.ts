/**
 * Loading the N-API addon (build/Release/fedlora_native.node) and describing which path is active.
 *
 * The addon is optional: `npm ci` builds it with node-gyp when a C compiler is present, and it opens
 * OpenBLAS with dlopen at run time. Loading never throws; the status says why the fast path is off.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';

/** Functions exported by the C addon (native/addon.c); all buffers are caller-owned. */
export interface NativeAddon {
  info(): { blas: string; threads: number };
  setThreads(n: number): void;
  matmul(
    a: Float32Array, b: Float32Array, out: Float32Array, batchShape: number[], aStrides: number[],
    bStrides: number[], m: number, n: number, k: number, transposeA: boolean, transposeB: boolean,
  ): void;
  binary(op: number, a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], out: Float32Array, outShape: number[]): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  softmaxBwd(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, cols: number): void;
  /** Absent from addons built before it existed (the op then uses tfjs kernels). */
  causalSoftmax?(x: Float32Array, out: Float32Array, rows: number, cols: number, scale: number): void;
  causalMatmul?(mode: number, a: Float32Array, b: Float32Array, c: Float32Array, batch: number, t: number, d: number, block: number): void;
  causalSoftmaxBwd?(dy: Float32Array, y: Float32Array, dx: Float32Array, rows: number, cols: number, scale: number): void;
  reduceRows(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  reduceCols(op: number, x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  transpose(x: Float32Array, shape: number[], perm: number[], out: Float32Array): void;
  layerNormFwd(
    x: Float32Array, gamma: Float32Array, beta: Float32Array, y: Float32Array, mean: Float32Array,
    rstd: Float32Array, rows: number, cols: number, eps: number,
  ): void;
  layerNormBwd(
    dy: Float32Array, x: Float32Array, gamma: Float32Array, mean: Float32Array, rstd: Float32Array,
    dx: Float32Array, dgamma: Float32Array, dbeta: Float32Array, rows: number, cols: number,
  ): void;
  geluTanhBwd(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  sparseXentFwd(logits: Float32Array, labels: Int32Array, loss: Float32Array, probs: Float32Array, rows: number, cols: number): void;
  sparseXentBwd(probs: Float32Array, labels: Int32Array, dloss: Float32Array, dlogits: Float32Array, rows: number, cols: number): void;
  /** One AdamW step; `hp` holds the ten scalars of adamwScalars (optim-ops.ts). Outputs may alias inputs. */
  adamw(
    p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, pOut: Float32Array, mOut: Float32Array, vOut: Float32Array,
    hp: Float64Array,
  ): void;
  /** sum(x^2), accumulated in double. */
  sumSquares(x: Float32Array): number;
  /** acc[u] += float64 sum of squares of row u (one by one); absent from addons built before it (grid-sum-ops.ts). */
  rowsSumSquares?(x: Float32Array, rowLength: number, rows: number, acc: Float64Array): void;
  /** counts[k] += Math.round(factors[u] x[u][k] / h) over rows u; absent from addons built before it (grid-sum-ops.ts). */
  gridRoundAccumulate?(x: Float32Array, rowLength: number, rows: number, factors: Float64Array, h: number, counts: Float64Array): void;
  /** Copies `rows` runs of `cols` floats from src (every srcStride) to dst (every dstStride). */
  copy2d(src: Float32Array, srcOffset: number, srcStride: number, dst: Float32Array, dstOffset: number, dstStride: number, rows: number, cols: number): void;
  /** out[i] = rows indices[i] of x (rows of rowLength floats); throws a RangeError naming an index out of range. */
  gatherRows(x: Float32Array, rowLength: number, indices: Int32Array, out: Float32Array): void;
}

/** Operation codes shared with native/fl_native.h. */
export const BinaryOp = { add: 0, sub: 1, mul: 2, div: 3, squaredDifference: 4, max: 5, min: 6, pow: 7 } as const;
export const UnaryOp = {
  exp: 0, log: 1, tanh: 2, sqrt: 3, rsqrt: 4, square: 5, neg: 6, reciprocal: 7, sigmoid: 8, relu: 9, abs: 10, geluTanh: 11,
} as const;
export const ReduceOp = { sum: 0, max: 1, min: 2, mean: 3, prod: 4 } as const;

/** What loadNativeCpu found: `name` is `native-openblas`, `native-loops` (addon without BLAS) or `cpu`. */
export interface NativeCpuStatus {
  available: boolean;
  reason?: string;
  name: string;
  blas?: string;
  threads?: number;
}

/** Options for loadNativeCpu; defaults read FEDLORA_NUM_THREADS and the core count, FEDLORA_NATIVE=0 disables the addon. */
export interface LoadOptions {
  numThreads?: number;
  env?: Record<string, string | undefined>;
}

const INSTALL_HINT = 'apt-get install libopenblas0-pthread';
let cached: { addon: NativeAddon | null; status: NativeCpuStatus } | null = null;

function threadCount(options: LoadOptions): number {
  if (options.numThreads !== undefined) return options.numThreads;
  const raw = (options.env ?? process.env)['FEDLORA_NUM_THREADS'];
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`FEDLORA_NUM_THREADS: expected a positive integer, received ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * Loads the addon once and sets the BLAS thread count. Never throws: a missing build or BLAS is
 * reported in `reason` (a bad FEDLORA_NUM_THREADS is too, with the default used instead).
 */
export function loadNativeCpu(options: LoadOptions = {}): NativeCpuStatus {
  if (cached) {
    if (cached.addon && options.numThreads !== undefined) {
      cached.addon.setThreads(options.numThreads);
      cached.status = { ...cached.status, threads: cached.addon.info().threads };
    }
    return cached.status;
  }
  if ((options.env ?? process.env)['FEDLORA_NATIVE'] === '0') {
    cached = { addon: null, status: { available: false, name: 'cpu', reason: 'native kernels disabled by FEDLORA_NATIVE=0' } };
    return cached.status;
  }
  const require = createRequire(import.meta.url);
  let addon: NativeAddon;
  try {
    addon = require('../build/Release/fedlora_native.node') as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    cached = {
      addon: null,
      status: {
        available: false,
        name: 'cpu',
        reason: `native addon not built (${why}): install a C compiler (apt-get install build-essential) and ${INSTALL_HINT}, then npm ci`,
      },
    };
    return cached.status;
  }
  let threads: number;
  let threadNote = '';
  try {
    threads = threadCount(options);
  } catch (err) {
    threads = availableParallelism();
    threadNote = `${(err as Error).message}; using ${threads}`;
  }
  addon.setThreads(threads);
  const info = addon.info();
  const status: NativeCpuStatus =
    info.blas === ''
      ? {
          available: true,
          name: 'native-loops',
          reason: `libopenblas not found: ${INSTALL_HINT} (matrix products use portable C loops)`,
          threads: info.threads,
        }
      : { available: true, name: 'native-openblas', blas: info.blas, threads: info.threads };
  if (threadNote) status.reason = status.reason ? `${status.reason}; ${threadNote}` : threadNote;
  cached = { addon, status };
  return status;
}

/** The loaded addon, or null when loadNativeCpu reported it unavailable. */
export function nativeAddon(): NativeAddon | null {
  if (!cached) loadNativeCpu();
  return cached!.addon;
}
