import { findNonFinite, l2NormNamed, type NamedTensors, type RandomBytes } from '@fedlora/tensor';
import { gaussianOnGrid } from './samplers.js';

/**
 * Scales an update so that its L2 norm (over all tensors together) is at most clipNorm:
 * x * min(1, C / ||x||_2), the clipping of DP-FedAvg (McMahan et al. 2018, "Learning
 * Differentially Private Recurrent Language Models", Algorithm 1, ClipFn). Returns new buffers,
 * the norm before clipping and the scale applied. Non-finite values are refused: a NaN would
 * make the norm NaN and silently disable clipping.
 */
export function clipL2(update: NamedTensors, clipNorm: number): { clipped: NamedTensors; norm: number; scale: number } {
  if (typeof clipNorm !== 'number' || !Number.isFinite(clipNorm) || clipNorm <= 0) {
    throw new RangeError(`clipNorm must be a finite number > 0, received ${String(clipNorm)}`);
  }
  const bad = findNonFinite(update);
  if (bad) throw new RangeError(`update must be finite, tensor "${bad.name}" has a non-finite value at index ${bad.index}`);
  const norm = l2NormNamed(update);
  const scale = norm > clipNorm ? clipNorm / norm : 1;
  const clipped: NamedTensors = new Map();
  for (const [name, t] of update) {
    const data = new Float32Array(t.data.length);
    for (let i = 0; i < data.length; i++) data[i] = t.data[i]! * scale;
    clipped.set(name, { shape: [...t.shape], data });
  }
  // Float32 rounding can leave the norm a hair above C; shrink by one ulp-scale factor if so.
  if (scale < 1 && l2NormNamed(clipped) > clipNorm) {
    const fix = clipNorm / l2NormNamed(clipped) - 1e-7;
    for (const t of clipped.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * fix;
  }
  return { clipped, norm, scale };
}

/** Options of AdaptiveClipper (names follow Andrew et al. 2021, Algorithm 1). */
export interface AdaptiveClipperOptions {
  /** Initial clip norm C_0 (> 0). */
  initialClip: number;
  /** Target quantile gamma of update norms to clip at, in (0, 1); 0.5 in the paper's experiments. */
  targetQuantile?: number;
  /** Learning rate eta_C of the geometric update; 0.2 in the paper. */
  learningRate?: number;
  /** Standard deviation sigma_b of the noise on the count of unclipped updates (0 = no noise). */
  countNoiseStd: number;
  /** Expected number of clients per round m (the count is divided by it). */
  expectedClients: number;
}

/**
 * Quantile-based adaptive clipping: Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially
 * Private Learning with Adaptive Clipping", Algorithm 1. Each client reports b_i = 1[||Delta_i|| <= C];
 * the server forms the noisy fraction b~ = (sum b_i + N(0, sigma_b^2)) / m and updates
 * C <- C * exp(-eta_C (b~ - gamma)) (geometric update, Section 2.2). Releasing the count costs
 * privacy too: to keep the budget of noise multiplier z for the update sum, use
 * `AdaptiveClipper.updateNoiseMultiplier(z, sigma_b)` for the updates (Section 3.1).
 * The count noise is a discrete Gaussian on a fine grid (`gaussianOnGrid`), never a float Gaussian.
 */
export class AdaptiveClipper {
  private clip: number;
  readonly targetQuantile: number;
  readonly learningRate: number;
  readonly countNoiseStd: number;
  readonly expectedClients: number;

  constructor(opts: AdaptiveClipperOptions) {
    const { initialClip, targetQuantile = 0.5, learningRate = 0.2, countNoiseStd, expectedClients } = opts;
    if (!(initialClip > 0) || !Number.isFinite(initialClip)) throw new RangeError(`initialClip must be > 0, received ${initialClip}`);
    if (!(targetQuantile > 0 && targetQuantile < 1)) throw new RangeError(`targetQuantile must be in (0, 1), received ${targetQuantile}`);
    if (!(learningRate > 0)) throw new RangeError(`learningRate must be > 0, received ${learningRate}`);
    if (!(countNoiseStd >= 0)) throw new RangeError(`countNoiseStd must be >= 0, received ${countNoiseStd}`);
    if (!Number.isInteger(expectedClients) || expectedClients < 1) {
      throw new RangeError(`expectedClients must be an integer >= 1, received ${expectedClients}`);
    }
    this.clip = initialClip;
    this.targetQuantile = targetQuantile;
    this.learningRate = learningRate;
    this.countNoiseStd = countNoiseStd;
    this.expectedClients = expectedClients;
  }

  /** The clip norm C to use in the current round. */
  get clipNorm(): number {
    return this.clip;
  }

  /** A client's bit b_i: 1 when its update norm is within the current clip norm. */
  indicator(norm: number): 0 | 1 {
    return norm <= this.clip ? 1 : 0;
  }

  /**
   * Folds one round's indicators (or their count with the number of reports) into the clip norm;
   * draws the count noise from rng. The noisy sum is over centred bits b_i - 1/2, whose
   * sensitivity is 1/2: that is what makes the (2 sigma_b)^-2 term of Section 3.1 right.
   * Returns the new clip norm and the noisy unclipped fraction b~.
   */
  update(indicators: readonly number[] | { unclipped: number; reports: number }, rng: RandomBytes): { clipNorm: number; noisyFraction: number } {
    const { unclipped, reports } = Array.isArray(indicators)
      ? { unclipped: indicators.reduce((s: number, b: number) => s + (b ? 1 : 0), 0), reports: indicators.length }
      : (indicators as { unclipped: number; reports: number });
    const noise = this.countNoiseStd > 0 ? gaussianOnGrid(this.countNoiseStd, 1, rng)[0]! : 0;
    return this.applyNoisyCentredCount(unclipped - reports / 2 + noise);
  }

  /**
   * Folds an already noised centred count sum_i (b_i - 1/2) + N into the clip norm (distributed
   * noise: the clients added the count noise in the integer domain and secure aggregation summed
   * it). b~ = count / m + 1/2; C <- C exp(-eta_C (b~ - gamma)).
   */
  applyNoisyCentredCount(noisyCentredCount: number): { clipNorm: number; noisyFraction: number } {
    if (!Number.isFinite(noisyCentredCount)) throw new RangeError(`noisyCentredCount must be finite, received ${noisyCentredCount}`);
    const noisyFraction = noisyCentredCount / this.expectedClients + 0.5;
    this.clip *= Math.exp(-this.learningRate * (noisyFraction - this.targetQuantile));
    return { clipNorm: this.clip, noisyFraction };
  }

  /**
   * Effective noise multiplier of releasing the update sum with noise multiplier zDelta and the
   * centred count with noise sigma_b together: (zDelta^-2 + (2 sigma_b)^-2)^(-1/2) (Andrew et al.
   * 2021, Section 3.1); this is what the accountant must be given.
   */
  static effectiveNoiseMultiplier(zDelta: number, countNoiseStd: number): number {
    if (!(zDelta > 0)) throw new RangeError(`zDelta must be > 0, received ${zDelta}`);
    if (!(countNoiseStd > 0)) throw new RangeError(`countNoiseStd must be > 0, received ${countNoiseStd}`);
    return (zDelta ** -2 + (2 * countNoiseStd) ** -2) ** -0.5;
  }

  /**
   * Noise multiplier for the update sum when the clipped count is released too:
   * z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2), Andrew et al. 2021, Section 3.1; the pair then has
   * the privacy of a single Gaussian mechanism with noise multiplier z.
   */
  static updateNoiseMultiplier(z: number, countNoiseStd: number): number {
    if (!(z > 0)) throw new RangeError(`z must be > 0, received ${z}`);
    if (countNoiseStd === 0) throw new RangeError('countNoiseStd must be > 0 when the count is released');
    const inv = z ** -2 - (2 * countNoiseStd) ** -2;
    if (inv <= 0) {
      throw new RangeError(`countNoiseStd ${countNoiseStd} is too small for z ${z}: need countNoiseStd > z/2 = ${z / 2}`);
    }
    return inv ** -0.5;
  }

  /** State for persistence. */
  toJSON(): AdaptiveClipperOptions & { clipNorm: number } {
    return {
      initialClip: this.clip,
      clipNorm: this.clip,
      targetQuantile: this.targetQuantile,
      learningRate: this.learningRate,
      countNoiseStd: this.countNoiseStd,
      expectedClients: this.expectedClients,
    };
  }
}
