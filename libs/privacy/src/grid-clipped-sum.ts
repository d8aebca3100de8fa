import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { gaussianOnGridCounts } from './samplers.js';

/**
 * DP-SGD's clipped sum with a sensitivity that holds in floating point, not only in real numbers
 * (Abadi et al. 2016, Algorithm 1, lines 5-7). Each example's float32 gradient g (d values, a
 * function of that example alone) is clipped with a certified factor and rounded to the noise
 * grid h Z *per example*; the sum is a sum of integers, exact in float64. Two neighbouring
 * batches therefore differ by exactly one example's integer vector K, and
 *
 *   ||K h|| <= C + sqrt(d) h / 2  <  C + sqrt(d) h = gridSensitivity(C, d, h),
 *
 * the sensitivity `dpSgdParams` accounts (the ledger format and its z' are unchanged). Proof,
 * with u = 2^-53 and gamma_n = n u / (1 - n u) (Higham 2002, "Accuracy and Stability of Numerical
 * Algorithms", 2nd ed., Lemma 3.1):
 * 1. S = fl(sum_k g_k^2): each g_k^2 is exact in float64 (a float32 has a 24-bit significand);
 *    summing d non-negative terms one by one puts each through at most d - 1 roundings, so by
 *    Lemma 3.1 |S - ||g||^2| <= gamma_{d-1} ||g||^2, hence ||g|| <= sqrt(S / (1 - gamma_d)).
 * 2. N = fl(sqrt(S)) >= sqrt(S) (1 - u); c = fl(fl(C fl(1 - m)) / N) <= C (1 - m) (1 + u)^3 / N
 *    (or c = 1 when N <= that target, which bounds ||g|| the same way).
 * 3. x_k = fl(c g_k) = c g_k (1 + delta_k): ||x|| <= c (1 + u) ||g||.
 * 4. K_k = round(fl(x_k / h)) is within 1/2 + |x_k| u / h of x_k / h, so
 *    ||K h|| <= ||x|| (1 + u) + sqrt(d) h / 2.
 * Together ||K h|| - sqrt(d) h / 2 <= C (1 - m) (1 + u)^5 / ((1 - u) sqrt(1 - gamma_d))
 * <= C (1 - m) (1 + 7u) (1 + 4 d u / 3) <= C for the margin m = (3 d + 16) u (`clipMargin`),
 * using gamma_d <= 4 d u / 3 and 1 / sqrt(1 - gamma) <= 1 + gamma while d u <= 1/4.
 * Naive min(1, C / ||g||) in floating point can leave ||c g|| a few ulps above C (tested); the
 * margin, about 8e-12 for the tiny model's d = 24 576, costs nothing measurable in utility.
 */

const U = 2 ** -53;

/** The relative clip margin m = (3 d + 16) 2^-53 that covers float64 rounding in `certifiedClipFactor` for d values. */
export function clipMargin(dimension: number): number {
  if (!Number.isInteger(dimension) || dimension < 1 || dimension * U > 0.25) throw new RangeError(`dimension must be an integer in [1, 2^51], received ${dimension}`);
  return (3 * dimension + 16) * U;
}

/**
 * c = min(1, C (1 - m) / sqrt(S)) for S, the float64 sum of squares of d float32 values taken one
 * by one: c g computed in float64 has L2 norm <= C (see the proof above). Returns 1 when S is 0.
 */
export function certifiedClipFactor(normSq: number, dimension: number, clipNorm: number): number {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new RangeError(`clipNorm must be a finite number > 0, received ${clipNorm}`);
  if (!(normSq >= 0) || !Number.isFinite(normSq)) throw new RangeError(`normSq must be a finite number >= 0, received ${normSq}`);
  const target = clipNorm * (1 - clipMargin(dimension));
  const n = Math.sqrt(normSq);
  return n > target ? target / n : 1;
}

/**
 * The two loops of `GridClippedSum.addRows`, injectable so that a faster implementation (C, in
 * libs/native-cpu `nativeGridSumKernels`) can run them; any implementation must give the bits of
 * `jsGridSumKernels`, which are those of `add` (the proof above assumes that arithmetic).
 */
export interface GridSumKernels {
  /** acc[u] += sum_k x[u rowLength + k]^2 in float64, added one by one in k order (continuing acc[u]). */
  rowsSumSquares(x: Float32Array, rowLength: number, rows: number, acc: Float64Array): void;
  /** counts[k] += Math.round((factors[u] * x[u rowLength + k]) / h) for u = 0 .. rows - 1 in order. */
  gridRoundAccumulate(x: Float32Array, rowLength: number, rows: number, factors: Float64Array, h: number, counts: Float64Array): void;
}

/** The loops of `add`, over rows of typed arrays (monomorphic loops: the form V8 compiles best). */
export const jsGridSumKernels: GridSumKernels = {
  rowsSumSquares(x, rowLength, rows, acc) {
    for (let u = 0; u < rows; u++) {
      const off = u * rowLength;
      let s = acc[u]!;
      for (let k = 0; k < rowLength; k++) {
        const v = x[off + k]!;
        s += v * v;
      }
      acc[u] = s;
    }
  },
  gridRoundAccumulate(x, rowLength, rows, factors, h, counts) {
    for (let u = 0; u < rows; u++) {
      const off = u * rowLength;
      const f = factors[u]!;
      for (let k = 0; k < rowLength; k++) counts[k] = counts[k]! + Math.round((f * x[off + k]!) / h);
    }
  },
};

/** Result of adding one example to a `GridClippedSum`. */
export interface GridContribution {
  /** The clip factor applied (1: not clipped). */
  factor: number;
  /** The float64 squared norm of the example's gradient before clipping. */
  normSq: number;
}

/**
 * Accumulates sum_i round(c_i g_i / h) over examples, each clipped with `certifiedClipFactor`,
 * as exact integers per coordinate (see the proof at the top of this file). Tensors are given in
 * a fixed order of `sizes`; `counts` holds the integer sums.
 */
export class GridClippedSum {
  /** Integer sums, one Float64Array per tensor (every value an exact integer). */
  readonly counts: Float64Array[];
  /** Examples added so far. */
  examples = 0;
  private readonly dimension: number;
  private readonly maxPerCoordinate: number;

  constructor(
    readonly sizes: readonly number[],
    readonly opts: { clipNorm: number; gridStep: number },
  ) {
    if (!(opts.clipNorm > 0) || !Number.isFinite(opts.clipNorm)) throw new RangeError(`clipNorm must be a finite number > 0, received ${opts.clipNorm}`);
    if (!(opts.gridStep > 0) || !Number.isFinite(opts.gridStep)) throw new RangeError(`gridStep must be a finite number > 0, received ${opts.gridStep}`);
    this.dimension = sizes.reduce((a, b) => a + b, 0);
    clipMargin(this.dimension); // validates d
    // |K_k| <= C / h + 1 per example: the sums, and the sums plus int32 noise, stay exact integers while examples * that <= 2^52.
    this.maxPerCoordinate = Math.ceil(opts.clipNorm / opts.gridStep) + 1;
    this.counts = sizes.map((n) => new Float64Array(n));
  }

  /**
   * Adds one example whose gradient is `parts` (one array per tensor, in the order of `sizes`;
   * float32 values, or float64 values that are float32-representable for the proof to apply).
   */
  add(parts: readonly ArrayLike<number>[]): GridContribution {
    if (parts.length !== this.sizes.length) throw new RangeError(`an example must have ${this.sizes.length} tensors, received ${parts.length}`);
    if ((this.examples + 1) * this.maxPerCoordinate > 2 ** 52) {
      throw new RangeError(`${this.examples + 1} examples of up to ${this.maxPerCoordinate} grid steps each could overflow exact integer sums; use a coarser grid or a smaller batch`);
    }
    let normSq = 0;
    parts.forEach((p, t) => {
      if (p.length !== this.sizes[t]) throw new RangeError(`tensor ${t} of an example has ${p.length} values, expected ${this.sizes[t]}`);
      for (let k = 0; k < p.length; k++) normSq += p[k]! * p[k]!;
    });
    if (!Number.isFinite(normSq)) throw new RangeError(`example ${this.examples} has a non-finite gradient (squared norm ${normSq}); lower the learning rate or check the data`);
    const factor = certifiedClipFactor(normSq, this.dimension, this.opts.clipNorm);
    const h = this.opts.gridStep;
    parts.forEach((p, t) => {
      const acc = this.counts[t]!;
      for (let k = 0; k < p.length; k++) acc[k] = acc[k]! + Math.round((factor * p[k]!) / h);
    });
    this.examples++;
    return { factor, normSq };
  }

  /**
   * Adds `rows` examples at once, example u being row u of every tensor: `parts[t]` holds rows x
   * sizes[t] float32 values (example u's at u * sizes[t]). The same sums, norms and factors as
   * `add` called on each row in order; the loops run in `kernels` (default: JS). Throws before
   * adding anything if an example's gradient is not finite.
   */
  addRows(parts: readonly Float32Array[], rows: number, kernels: GridSumKernels = jsGridSumKernels): { normsSq: Float64Array; factors: Float64Array } {
    if (parts.length !== this.sizes.length) throw new RangeError(`an example must have ${this.sizes.length} tensors, received ${parts.length}`);
    if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`rows must be an integer >= 0, received ${rows}`);
    if ((this.examples + rows) * this.maxPerCoordinate > 2 ** 52) {
      throw new RangeError(`${this.examples + rows} examples of up to ${this.maxPerCoordinate} grid steps each could overflow exact integer sums; use a coarser grid or a smaller batch`);
    }
    parts.forEach((p, t) => {
      if (!(p instanceof Float32Array)) throw new TypeError(`tensor ${t} must be a Float32Array, received ${Object.prototype.toString.call(p)}`);
      if (p.length !== rows * this.sizes[t]!) throw new RangeError(`tensor ${t} must hold ${rows} x ${this.sizes[t]} values, received ${p.length}`);
    });
    const normsSq = new Float64Array(rows);
    parts.forEach((p, t) => kernels.rowsSumSquares(p, this.sizes[t]!, rows, normsSq));
    const bad = normsSq.findIndex((n) => !Number.isFinite(n));
    if (bad >= 0) throw new RangeError(`example ${this.examples + bad} has a non-finite gradient (squared norm ${normsSq[bad]}); lower the learning rate or check the data`);
    const factors = Float64Array.from(normsSq, (n) => certifiedClipFactor(n, this.dimension, this.opts.clipNorm));
    parts.forEach((p, t) => kernels.gridRoundAccumulate(p, this.sizes[t]!, rows, factors, this.opts.gridStep, this.counts[t]!));
    this.examples += rows;
    return { normsSq, factors };
  }
}

/**
 * (K + Z) h / divisor as float32, with Z ~ N_Z(0, (sigma / h)^2) per coordinate drawn exactly
 * (`gaussianOnGridCounts`, tensor by tensor in order: the same draws as `gaussianOnGrid`). The
 * integer K + Z is formed first, so everything after it is post-processing of the noisy sum.
 */
export function privatizeGridCounts(
  counts: readonly Float64Array[],
  opts: { sigma: number; gridStep: number; rng: RandomBytes; divisor: number },
): Float32Array[] {
  if (!(opts.divisor > 0)) throw new RangeError(`divisor must be > 0, received ${opts.divisor}`);
  return counts.map((k) => {
    const z = gaussianOnGridCounts(opts.sigma, k.length, opts.rng, opts.gridStep);
    const out = new Float32Array(k.length);
    for (let i = 0; i < k.length; i++) out[i] = ((k[i]! + z[i]!) * opts.gridStep) / opts.divisor;
    return out;
  });
}

/** `counts` as named tensors (values K h / divisor, no noise): for noiseless runs and tests. */
export function gridCountsToTensors(counts: readonly Float64Array[], layout: NamedTensors, gridStep: number, divisor = 1): NamedTensors {
  const out: NamedTensors = new Map();
  [...layout].forEach(([name, t], i) => out.set(name, { shape: [...t.shape], data: Float32Array.from(counts[i]!, (k) => (k * gridStep) / divisor) }));
  return out;
}
