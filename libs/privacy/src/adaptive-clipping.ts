import { AdaptiveClipper } from './clipping.js';

/**
 * Defaults of quantile-based adaptive clipping from Andrew, Thakkar, McMahan, Ramaswamy 2021,
 * "Differentially Private Learning with Adaptive Clipping" (NeurIPS), Section 2.2 and Section 5:
 * clip to the median (gamma = 0.5), geometric learning rate eta_C = 0.2, and noise on the count
 * of unclipped updates sigma_b = m / 20 for m expected clients per round. TF Privacy's
 * QuantileAdaptiveClipSumQuery documents the same three recommendations.
 */
export const ADAPTIVE_CLIPPING_DEFAULTS = Object.freeze({ targetQuantile: 0.5, learningRate: 0.2, countNoiseStdPerClient: 1 / 20 });

/** What a federation asks for when it turns adaptive clipping on. */
export interface AdaptiveClippingRequest {
  /** Target noise multiplier z of the round as a whole (update sum and count together). */
  noiseMultiplier: number;
  /** Expected number of updates per round m (the count is divided by it). */
  expectedClients: number;
  /** Clip norm C_0 of the first round. */
  initialClip: number;
  /** gamma; default 0.5. */
  targetQuantile?: number;
  /** eta_C; default 0.2. */
  learningRate?: number;
  /** sigma_b, std of the noise on the count; default see resolveAdaptiveClipping. */
  countNoiseStd?: number;
}

/** Adaptive clipping with every parameter fixed, and the update noise multiplier it implies. */
export interface AdaptiveClippingSettings {
  initialClip: number;
  targetQuantile: number;
  learningRate: number;
  countNoiseStd: number;
  expectedClients: number;
  /** z: the noise multiplier the round is accounted with (Theorem 1). */
  noiseMultiplier: number;
  /** z_Delta = (z^-2 - (2 sigma_b)^-2)^(-1/2): the noise multiplier applied to the update sum. */
  updateNoiseMultiplier: number;
}

/**
 * Fixes adaptive clipping's parameters for a federation. The count noise defaults to the paper's
 * sigma_b = m/20, which presumes hundreds of clients per round; a cross-silo round of a few
 * institutions would then need sigma_b > z/2 that m/20 cannot give (Theorem 1 requires
 * (2 sigma_b)^-2 < z^-2), so the default is max(m/20, z): at sigma_b = z the update noise grows by
 * a factor 1/sqrt(1 - 1/4) ~ 1.155 and the count is still informative over a few rounds.
 * Throws a RangeError naming the parameter when an explicit sigma_b is too small.
 */
export function resolveAdaptiveClipping(req: AdaptiveClippingRequest): AdaptiveClippingSettings {
  const { noiseMultiplier: z, expectedClients: m, initialClip } = req;
  if (!(z > 0) || !Number.isFinite(z)) throw new RangeError(`noiseMultiplier must be a finite number > 0 for adaptive clipping, received ${z}`);
  if (!Number.isInteger(m) || m < 1) throw new RangeError(`expectedClients must be an integer >= 1, received ${m}`);
  const targetQuantile = req.targetQuantile ?? ADAPTIVE_CLIPPING_DEFAULTS.targetQuantile;
  const learningRate = req.learningRate ?? ADAPTIVE_CLIPPING_DEFAULTS.learningRate;
  const countNoiseStd = req.countNoiseStd ?? Math.max(m * ADAPTIVE_CLIPPING_DEFAULTS.countNoiseStdPerClient, z);
  if (!(countNoiseStd > z / 2)) {
    throw new RangeError(`countNoiseStd (sigma_b) must be > noiseMultiplier/2 = ${z / 2} (Andrew et al. 2021, Theorem 1), received ${countNoiseStd}`);
  }
  // The constructor validates the remaining ranges with messages that name them.
  new AdaptiveClipper({ initialClip, targetQuantile, learningRate, countNoiseStd, expectedClients: m });
  return { initialClip, targetQuantile, learningRate, countNoiseStd, expectedClients: m, noiseMultiplier: z, updateNoiseMultiplier: AdaptiveClipper.updateNoiseMultiplier(z, countNoiseStd) };
}

/** A fresh clipper for the settings, starting at `clipNorm` (default: the initial clip). */
export function adaptiveClipperFor(s: AdaptiveClippingSettings, clipNorm = s.initialClip): AdaptiveClipper {
  return new AdaptiveClipper({ initialClip: clipNorm, targetQuantile: s.targetQuantile, learningRate: s.learningRate, countNoiseStd: s.countNoiseStd, expectedClients: s.expectedClients });
}
