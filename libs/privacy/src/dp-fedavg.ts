import { assertDistributedNoiseIsSafe, type RoundPrivacyParams } from './round-events.js';
import { centralGrid } from './central-grid.js';

/**
 * Institution-level DP-FedAvg configuration and the per-round privacy parameters it implies
 * (McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private Recurrent Language
 * Models"; distributed variant: Kairouz, Liu, Steinke 2021 and Agarwal, Kairouz, Liu 2021).
 * The coordinator and every client derive the same parameters from the same config, so what a
 * client plans against its budget is what the federation ledger records.
 */
export interface DpFedAvgConfig {
  /** central: the coordinator adds the noise; distributed: each client adds an integer share. */
  mode: 'central' | 'distributed';
  /** L2 clip norm C of each client's update. */
  clipNorm: number;
  /** Noise multiplier z: the released sum carries noise of std z*C (z*C*scale in the integer domain). */
  noiseMultiplier: number;
  /**
   * Poisson client-sampling rate: each institution joins a round independently with this
   * probability (1 when every institution takes part, the usual cross-silo case). A fixed-size
   * cohort drawn without replacement is NOT what the sampled-Gaussian accountant covers: use 1.
   */
  samplingRate?: number;
  /** Distributed only: skellam (default) or discrete_gaussian. */
  noise?: 'skellam' | 'discrete_gaussian';
  /** Distributed only: integer scale applied before rounding (the secure-aggregation encoder's). */
  scale?: number;
  /** Distributed only: fewest survivors a round may complete with (noise is planned for them). */
  minSurvivors?: number;
  /** Whether secure aggregation hides individual updates. */
  secureAggregation: boolean;
  /** Allow distributed noise without secure aggregation (tests, research only). */
  force?: boolean;
  /**
   * Adaptive clipping (`AdaptiveClipper`): std sigma_b of the noise on the centred count of
   * unclipped updates, accounted together with the sum. Pass the round's current clip norm as
   * `clipNorm` and the update noise multiplier z_Delta as `noiseMultiplier`.
   */
  countNoiseStd?: number;
  /**
   * Distributed mode with adaptive clipping: integer scale S of the extra securely summed
   * coordinate that carries each client's centred bit as S (2 b_i - 1) (from the round's
   * secure-aggregation plan). Its integer noise is planned so that `minSurvivors` shares give
   * std 2 S sigma_b, i.e. sigma_b on the centred count.
   */
  countScale?: number;
}

/**
 * Worst-case integer-domain sensitivities after scaling a vector of L2 norm <= C by `scale` and
 * rounding each of `dimension` coordinates to an integer (moving each by < 1, and rotation keeps
 * L2): l2 <= C*scale + sqrt(d); for integer vectors |x_i| <= x_i^2, so l1 <= l2 * min(sqrt(d), l2)
 * (the deterministic bound of Kairouz, Liu, Steinke 2021, Section 4, with beta = 0).
 */
export function integerSensitivities(clipNorm: number, scale: number, dimension: number): { l2: number; l1: number } {
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${clipNorm}`);
  if (!(scale > 0)) throw new RangeError(`scale must be > 0, received ${scale}`);
  if (!Number.isInteger(dimension) || dimension < 1) throw new RangeError(`dimension must be an integer >= 1, received ${dimension}`);
  const l2 = clipNorm * scale + Math.sqrt(dimension);
  return { l2, l1: l2 * Math.min(Math.sqrt(dimension), l2) };
}

/** Checks a config (refusing distributed noise without secure aggregation unless forced). */
export function validateDpConfig(cfg: DpFedAvgConfig): void {
  if (cfg.mode !== 'central' && cfg.mode !== 'distributed') throw new RangeError(`mode must be central or distributed, received ${JSON.stringify(cfg.mode)}`);
  if (!(cfg.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${cfg.clipNorm}`);
  if (!(cfg.noiseMultiplier > 0)) throw new RangeError(`noiseMultiplier must be > 0, received ${cfg.noiseMultiplier}`);
  const q = cfg.samplingRate ?? 1;
  if (!(q > 0 && q <= 1)) throw new RangeError(`samplingRate must be in (0, 1], received ${q}`);
  if (cfg.mode === 'distributed') {
    if (!(cfg.scale! > 0)) throw new RangeError(`distributed mode needs scale > 0, received ${cfg.scale}`);
    if (!Number.isInteger(cfg.minSurvivors) || cfg.minSurvivors! < 1) throw new RangeError(`distributed mode needs minSurvivors >= 1, received ${cfg.minSurvivors}`);
    if (cfg.noise !== undefined && cfg.noise !== 'skellam' && cfg.noise !== 'discrete_gaussian') {
      throw new RangeError(`noise must be skellam or discrete_gaussian, received ${JSON.stringify(cfg.noise)}`);
    }
  }
  if (cfg.countNoiseStd !== undefined && !(cfg.countNoiseStd > 0)) {
    throw new RangeError(`countNoiseStd (adaptive clipping) must be > 0, received ${cfg.countNoiseStd}`);
  }
  if (cfg.countNoiseStd !== undefined && cfg.mode === 'distributed' && !(Number.isInteger(cfg.countScale) && cfg.countScale! >= 1)) {
    // The bit rides in the securely summed integer vector: without its scale nobody can encode or account it.
    throw new RangeError(`adaptive clipping with distributed noise needs the integer countScale of the securely summed bit coordinate (from the round's secure-aggregation plan), received ${cfg.countScale}`);
  }
  assertDistributedNoiseIsSafe({ mode: cfg.mode, secureAggregation: cfg.secureAggregation, ...(cfg.force !== undefined ? { force: cfg.force } : {}) });
}

/**
 * Distributed mode: each client's integer noise variance, planned so that `minSurvivors` shares
 * already give the target aggregate std z*C*scale; more survivors only add noise.
 */
export function perClientNoiseVariance(cfg: DpFedAvgConfig): number {
  validateDpConfig(cfg);
  if (cfg.mode !== 'distributed') throw new RangeError('perClientNoiseVariance applies to distributed mode only');
  const aggregateStd = cfg.noiseMultiplier * cfg.clipNorm * cfg.scale!;
  return (aggregateStd * aggregateStd) / cfg.minSurvivors!;
}

/**
 * The privacy parameters of one round with `survivors` updates actually summed (pass the planned
 * minimum to a client's budget check, the real count to the ledger).
 */
export function dpRoundParams(cfg: DpFedAvgConfig, round: { survivors: number; dimension: number }): RoundPrivacyParams {
  validateDpConfig(cfg);
  const samplingRate = cfg.samplingRate ?? 1;
  if (cfg.mode === 'central') {
    return {
      mode: 'central',
      clipNorm: cfg.clipNorm,
      noiseMultiplier: cfg.noiseMultiplier,
      samplingRate,
      survivors: round.survivors,
      ...(cfg.countNoiseStd !== undefined ? { countNoiseStd: cfg.countNoiseStd } : {}),
      // The coordinator forms the noisy sum on this grid (central-grid.ts): its rounding and the norm check's slack are accounted.
      // Behind secure aggregation (cfg.scale from the round's encoding) the integer encoding's rounding is accounted too.
      grid: centralGrid(cfg.noiseMultiplier, cfg.clipNorm, round.dimension, cfg.secureAggregation && cfg.scale !== undefined ? { scale: cfg.scale } : undefined),
    };
  }
  const { l1, l2 } = integerSensitivities(cfg.clipNorm, cfg.scale!, round.dimension);
  const count =
    cfg.countNoiseStd !== undefined ? { count: { noiseStd: cfg.countNoiseStd, scale: cfg.countScale!, perClientVariance: perClientCountVariance(cfg) } } : {};
  return {
    ...count,
    mode: 'distributed',
    noise: cfg.noise ?? 'skellam',
    clipNorm: cfg.clipNorm,
    scale: cfg.scale!,
    perClientVariance: perClientNoiseVariance(cfg),
    l1Sensitivity: l1,
    l2Sensitivity: l2,
    dimension: round.dimension,
    samplingRate,
    survivors: round.survivors,
    secureAggregation: cfg.secureAggregation,
  };
}

/**
 * Distributed adaptive clipping: each client's integer noise variance on the bit coordinate
 * S (2 b_i - 1), planned so that `minSurvivors` shares give std 2 S sigma_b (sigma_b on the
 * centred count sum_i (b_i - 1/2) after dividing by 2S).
 */
export function perClientCountVariance(cfg: DpFedAvgConfig): number {
  if (cfg.mode !== 'distributed' || cfg.countNoiseStd === undefined || !(cfg.countScale! >= 1)) {
    throw new RangeError('perClientCountVariance applies to distributed mode with countNoiseStd and countScale only');
  }
  const std = 2 * cfg.countScale! * cfg.countNoiseStd;
  return (std * std) / cfg.minSurvivors!;
}
