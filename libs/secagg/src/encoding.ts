import type { RandomBytes } from '@fedlora/tensor';
import { paddedDimension, rotate, unrotate } from './hadamard.js';

/**
 * Distributed-DP encoding of a client update into Z_(2^b) and the server's inverse, after
 * Kairouz, Liu & Steinke 2021, "The Distributed Discrete Gaussian Mechanism for Federated
 * Learning with Secure Aggregation" (ICML), Alg. 1 (client) and Alg. 2 (server), and TFF's
 * `DistributedDpSumFactory`:
 *   client: clip to L2 <= C -> randomized Hadamard rotation -> scale by s -> conditional
 *           stochastic rounding -> + integer noise share -> wrap modulo 2^b;
 *   server: sum (mod 2^b, done by SecAgg) -> centre into [-2^(b-1), 2^(b-1)) -> / s ->
 *           inverse rotation -> / survivors.
 */

/** Parameters shared by all clients of a round (public, recorded in the round plan). */
export type EncodingParams = {
  /** Original dimension d. */
  dim: number;
  /** Padded (power of two) dimension D = length of the encoded vector. */
  paddedDim: number;
  /** Bit width b of the modular ring (1..32; words travel as Uint32). */
  bits: number;
  /** Scale s: integer units per unit of the update. */
  scale: number;
  /** L2 clip C in update units. */
  clip: number;
  /** Squared L2 bound enforced by conditional rounding, in integer units (the DP sensitivity^2). */
  roundedNormBound2: number;
  /** beta of conditional rounding (Kairouz et al. 2021, Thm. 4): retry probability bound. */
  beta: number;
  /** Planned per-client noise standard deviation in integer units (0 = no noise). */
  noiseStddevInt: number;
  /** Probability bound on modular overflow of any coordinate of the sum. */
  overflowProb: number;
  /** Predicted standard deviation of the quantization error of one coordinate of the average. */
  quantizationStd: number;
  /** Cohort size the parameters were chosen for. */
  n: number;
};

/** Inputs of `chooseEncodingParams`. */
export type EncodingParamsInput = {
  n: number;
  d: number;
  clip: number;
  /** Per-client noise standard deviation in update units (default 0: no DP noise). */
  noiseStddevPerClient?: number;
  /** Target probability that any coordinate of the sum overflows (default 1e-9). */
  overflowProb?: number;
  /** Bit width (default 32). */
  bits?: number;
  /** Conditional rounding beta (default exp(-0.5), as in TFF). */
  beta?: number;
};

/** Squared-norm bound of conditional rounding, Kairouz et al. 2021, Thm. 4 / Eq. (12). */
export function conditionalRoundingBound2(scaledClip: number, paddedDim: number, beta: number): number {
  const c = scaledClip;
  const D = paddedDim;
  const a = c * c + D / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (c + Math.sqrt(D) / 2);
  const b = (c + Math.sqrt(D)) ** 2;
  return Math.min(a, b);
}

/**
 * Chooses the scale s for bit width b so that the centred sum of n encoded vectors overflows
 * with probability <= overflowProb. Each coordinate of the sum is sub-Gaussian with variance
 * proxy V = n (s^2 C^2 / D + 1/4 + s^2 sigma^2): the rotated clipped update contributes C^2/D
 * per coordinate (Hoeffding over the random signs), rounding 1/4 (a bounded zero-mean error),
 * and the discrete Gaussian noise sigma^2 (it is sub-Gaussian, Canonne, Kamath & Steinke 2020,
 * Cor. 23). A union bound over D coordinates, P <= 2 D exp(-m^2 / (2V)) with m = 2^(b-1), gives
 * V <= m^2 / (2 ln(2D / p)); solve for s. This is the rule of TFF's DistributedDpSumFactory
 * (`_heuristic_scale_factor`, k standard deviations) with k derived from p instead of fixed.
 */
export function chooseEncodingParams(input: EncodingParamsInput): EncodingParams {
  const { n, d, clip } = input;
  const sigma = input.noiseStddevPerClient ?? 0;
  const p = input.overflowProb ?? 1e-9;
  const bits = input.bits ?? 32;
  const beta = input.beta ?? Math.exp(-0.5);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`chooseEncodingParams: n must be a positive integer, received ${n}`);
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`chooseEncodingParams: d must be a positive integer, received ${d}`);
  if (!(clip > 0)) throw new RangeError(`chooseEncodingParams: clip must be > 0, received ${clip}`);
  if (!(sigma >= 0)) throw new RangeError(`chooseEncodingParams: noiseStddevPerClient must be >= 0, received ${sigma}`);
  if (!(p > 0 && p < 1)) throw new RangeError(`chooseEncodingParams: overflowProb must be in (0, 1), received ${p}`);
  if (!Number.isInteger(bits) || bits < 2 || bits > 32) throw new RangeError(`chooseEncodingParams: bits must be 2..32, received ${bits}`);
  const D = paddedDimension(d);
  const m = 2 ** (bits - 1);
  const vMax = (m * m) / (2 * Math.log((2 * D) / p));
  const budget = vMax / n - 0.25;
  if (!(budget > 0)) {
    throw new RangeError(`chooseEncodingParams: bits=${bits} cannot hold the rounding error of n=${n} clients at overflowProb=${p}; use more bits`);
  }
  const scale = Math.sqrt(budget / ((clip * clip) / D + sigma * sigma));
  if (scale * sigma * 12 >= 2 ** 31) throw new RangeError(`chooseEncodingParams: noise of ${sigma} at scale ${scale} does not fit Int32 noise shares`);
  return {
    dim: d,
    paddedDim: D,
    bits,
    scale,
    clip,
    roundedNormBound2: conditionalRoundingBound2(scale * clip, D, beta),
    beta,
    noiseStddevInt: scale * sigma,
    overflowProb: p,
    quantizationStd: 1 / (2 * scale * Math.sqrt(n)),
    n,
  };
}

/**
 * Planned standard deviation of the DP noise in one coordinate of the decoded average of
 * `count` survivors: each adds an independent integer share with standard deviation
 * noiseStddevInt, the sum's is sqrt(count) * noiseStddevInt, and the inverse rotation is
 * orthonormal, so per coordinate it is sqrt(count) * noiseStddevInt / (scale * count).
 * Report it next to the measured one (accounting must use the survivors, not the cohort).
 */
export function plannedAverageNoiseStd(params: EncodingParams, count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`plannedAverageNoiseStd: count must be a positive integer, received ${count}`);
  return (Math.sqrt(count) * params.noiseStddevInt) / (params.scale * count);
}

/** Scales `x` in place so that its L2 norm is at most `clip`; returns the norm before clipping. */
export function clipL2(x: Float64Array, clip: number): number {
  let s = 0;
  for (const v of x) s += v * v;
  const norm = Math.sqrt(s);
  if (norm > clip) {
    const f = clip / norm;
    for (let i = 0; i < x.length; i++) x[i]! *= f;
  }
  return norm;
}

/**
 * Conditional stochastic rounding (Kairouz et al. 2021, Sec. 4.1, "conditional randomized
 * rounding"): round every coordinate up with probability equal to its fractional part
 * (unbiased), and redraw the whole vector until its squared norm is <= bound2, so the DP
 * sensitivity holds deterministically. Returns the number of attempts.
 */
export function conditionalStochasticRound(x: Float64Array, bound2: number, rng: RandomBytes, maxAttempts = 100): number {
  const out = new Float64Array(x.length);
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const u = new Uint32Array(rng(4 * x.length).slice().buffer);
    let n2 = 0;
    for (let i = 0; i < x.length; i++) {
      const f = Math.floor(x[i]!);
      const r = f + (u[i]! / 2 ** 32 < x[i]! - f ? 1 : 0);
      out[i] = r;
      n2 += r * r;
    }
    if (n2 <= bound2) {
      x.set(out);
      return attempt;
    }
  }
  throw new RangeError(`conditionalStochasticRound: no rounding within the norm bound after ${maxAttempts} attempts (input norm too large for the bound)`);
}

/** Options of `encodeUpdate`. */
export type EncodeOptions = {
  /** Public per-round rotation seed (32 bytes). */
  rotationSeed: Uint8Array;
  /** Randomness for stochastic rounding. */
  rng: RandomBytes;
  /** This client's noise share in integer units, e.g. a discrete Gaussian sampler (from libs/privacy). */
  noise?: (n: number) => Int32Array;
};

/** Client side: clip, rotate, scale, round, add noise, wrap into Z_(2^b) words of length paddedDim. */
export function encodeUpdate(update: ArrayLike<number>, params: EncodingParams, opts: EncodeOptions): Uint32Array {
  if (update.length !== params.dim) throw new RangeError(`encodeUpdate: update has ${update.length} values, params.dim is ${params.dim}`);
  const x = Float64Array.from(update);
  clipL2(x, params.clip);
  const y = rotate(x, opts.rotationSeed);
  for (let i = 0; i < y.length; i++) y[i]! *= params.scale;
  conditionalStochasticRound(y, params.roundedNormBound2, opts.rng);
  if (opts.noise) {
    const z = opts.noise(y.length);
    if (!(z instanceof Int32Array) || z.length !== y.length) {
      throw new RangeError(`encodeUpdate: noise must return an Int32Array of length ${y.length}, received ${z?.length}`);
    }
    for (let i = 0; i < y.length; i++) y[i]! += z[i]!;
  }
  const mask = params.bits === 32 ? 0xffffffff : 2 ** params.bits - 1;
  const out = new Uint32Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = (y[i]! >>> 0) & mask; // ToUint32 is reduction mod 2^32
  return out;
}

/** Server side: the average of `count` clients from their modular sum (mod 2^32 words, reduced to 2^b here). */
export function decodeAverage(sum: Uint32Array, count: number, params: EncodingParams, rotationSeed: Uint8Array): Float32Array {
  if (sum.length !== params.paddedDim) throw new RangeError(`decodeAverage: sum has ${sum.length} words, params.paddedDim is ${params.paddedDim}`);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`decodeAverage: count must be a positive integer, received ${count}`);
  const b = params.bits;
  const modulus = 2 ** b;
  const half = 2 ** (b - 1);
  const y = new Float64Array(sum.length);
  for (let i = 0; i < sum.length; i++) {
    const v = b === 32 ? sum[i]! : sum[i]! % modulus;
    y[i] = (v >= half ? v - modulus : v) / params.scale;
  }
  const x = unrotate(y, rotationSeed, params.dim);
  const out = new Float32Array(params.dim);
  for (let i = 0; i < out.length; i++) out[i] = x[i]! / count;
  return out;
}
