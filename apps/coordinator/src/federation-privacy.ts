import { existsSync, readFileSync } from 'node:fs';
import type { AdaptiveClipRecord, AdaptiveClippingSettings, DpFedAvgConfig, LedgerHead, LedgerSigner, NoiseCalibration, RoundPrivacyParams } from '@fedlora/privacy';
import { Ledger, accountedSampling, adaptiveClipperFor, calibrateDpFedAvg, validateDpConfig, verifyLedgerFile } from '@fedlora/privacy';
import { chooseEncodingParams } from '@fedlora/secagg';
import type { RoundAggregationFactory, RoundPlan, RoundSummary } from '@fedlora/federation';
import { attemptId, centralDpAggregation, roundPrivacyParams, secureAdaptiveClipping } from '@fedlora/federation';
import type { RandomBytes } from '@fedlora/tensor';

/** Institution-level DP of a federation, as the coordinator plans, applies and records it. */
export interface FederationPrivacy {
  /** The DP-FedAvg parameters every client receives in the plan of the round being opened (they check them against their budgets). */
  planExtra(): { privacy: DpFedAvgConfig & { delta: number; dimension: number; calibration?: NoiseCalibration }; ledgerHead: LedgerHead };
  /** Aggregation with central noise (undefined in distributed mode: secure aggregation sums). */
  aggregation: RoundAggregationFactory | undefined;
  /** Appends the round's signed ledger entry; returns the line and the cumulative epsilon. */
  recordRound(summary: RoundSummary, plan: RoundPlan, time: string): Promise<{ line: string; epsilon: number }>;
  /** The federation's cumulative epsilon at the configured delta. */
  epsilon(): number;
  /** The clip norm the next round will be planned with (changes between rounds with adaptive clipping). */
  clipNorm(): number;
  /** Distributed adaptive clipping: the secure round's per-round parameters (SecureAggregationOptions.perRound). */
  perRound?: () => { clipNorm: number; noiseStddevPerClient: number; countNoiseStd: number; minSurvivors: number };
  readonly ledgerPath: string;
}

/**
 * The noise standard deviation each client adds to its update in distributed DP: sigma_i =
 * z C / sqrt(m) for noise multiplier z, clip norm C and at least m survivors, so that the sum of
 * m survivors' independent shares has the central standard deviation z C (Kairouz, Liu, Steinke
 * 2021, "The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure
 * Aggregation", Section 4: each of n clients adds noise of variance sigma^2 / n). With more than
 * m survivors the sum only gets more noise. The one place this formula is written.
 */
export function distributedNoiseStddevPerClient(noiseMultiplier: number, clipNorm: number, minSurvivors: number): number {
  if (!(noiseMultiplier >= 0) || !(clipNorm > 0) || !Number.isInteger(minSurvivors) || minSurvivors < 1) {
    throw new RangeError(`distributed noise: expected noiseMultiplier >= 0, clipNorm > 0 and an integer minSurvivors >= 1, received ${noiseMultiplier}, ${clipNorm}, ${minSurvivors}`);
  }
  return (noiseMultiplier * clipNorm) / Math.sqrt(minSurvivors);
}

/**
 * Budget first for central DP-FedAvg (as Opacus's make_private_with_epsilon): the noise multiplier
 * that spends `targetEpsilon` at `delta` over `rounds`, calibrated by bisection through the RDP
 * accountant for exactly what the ledger will account. The coordinator forms the noisy sum on a
 * grid whose rounding is accounted over the update's `dimension` (central-grid.ts); behind secure
 * aggregation, over the padded Hadamard dimension and with the encoding's rounding, sqrt(D) / scale
 * (plannedPrivacy, libs/federation). The scale is chosen as a secure round chooses it for central
 * noise (chooseEncodingParams, 32 bits, no noise share) for `maxCohort` members: a smaller cohort
 * gets a larger scale and so spends less than calibrated for, never more.
 */
export function calibrateCentralDpFedAvg(o: {
  targetEpsilon: number;
  delta: number;
  institutions: number;
  rounds: number;
  clipNorm: number;
  samplingRate: number;
  dimension: number;
  secureAggregation?: { maxCohort: number };
}): NoiseCalibration {
  const encoding = o.secureAggregation ? chooseEncodingParams({ n: o.secureAggregation.maxCohort, d: o.dimension, clip: o.clipNorm, bits: 32 }) : undefined;
  return calibrateDpFedAvg({
    targetEpsilon: o.targetEpsilon,
    delta: o.delta,
    institutions: o.institutions,
    rounds: o.rounds,
    config: { mode: 'central', clipNorm: o.clipNorm, samplingRate: o.samplingRate, secureAggregation: !!encoding, ...(encoding ? { scale: encoding.scale } : {}) },
    dimension: encoding ? encoding.paddedDim : o.dimension,
  });
}

/**
 * Opens the federation ledger and builds the privacy side of rounds. The ledger records the
 * survivors actually summed (never the planned cohort) and aborted rounds with nothing released.
 *
 * With `adaptive`, quantile-based adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021,
 * Algorithm 1) drives the clip: each round's plan carries the current C, the update noise
 * multiplier z_Delta and the count noise sigma_b. Central mode: clients send their bit with the
 * update and the coordinator adds the count noise; distributed mode: the bit and its integer
 * noise share ride in the secure sum (`perRound` sizes the secure round). The ledger records C,
 * z_Delta, sigma_b, the survivors, the released fraction and the next C; a central round is
 * accounted with z = (z_Delta^-2 + (2 sigma_b)^-2)^(-1/2) (Section 3, Theorem 1), a distributed
 * one as the composition of the two integer releases. A restarted coordinator resumes the clip
 * from the ledger's last round.
 */
export async function createFederationPrivacy(opts: {
  config: DpFedAvgConfig;
  delta: number;
  dimension: number;
  ledgerPath: string;
  signer: LedgerSigner;
  rng: RandomBytes;
  adaptive?: AdaptiveClippingSettings;
  /** Budget first: how the noise multiplier was calibrated (recorded in the plan and in every round's ledger entry). */
  calibration?: NoiseCalibration;
}): Promise<FederationPrivacy> {
  const adaptive = opts.adaptive;
  if (adaptive && opts.config.mode === 'central' && opts.config.secureAggregation) {
    throw new RangeError('adaptive clipping with central noise needs each clipped-indicator bit, which secure aggregation hides: use distributed noise with secure aggregation, or central noise without it');
  }
  const config: DpFedAvgConfig = adaptive ? { ...opts.config, noiseMultiplier: adaptive.updateNoiseMultiplier, countNoiseStd: adaptive.countNoiseStd } : opts.config;
  if (config.mode === 'central') validateDpConfig(config);
  else if (!config.secureAggregation) throw new RangeError('distributed noise needs secure aggregation: each update would otherwise leave with only its own share of noise');
  const clipper = adaptive ? adaptiveClipperFor(adaptive, resumedClip(opts.ledgerPath) ?? adaptive.initialClip) : undefined;
  const ledger = await Ledger.open(opts.ledgerPath, { ...opts.signer, role: 'coordinator' }, { delta: opts.delta });
  const aggregation =
    config.mode === 'central'
      ? centralDpAggregation({ clipNorm: clipper?.clipNorm ?? config.clipNorm, noiseMultiplier: config.noiseMultiplier, rng: opts.rng, ...(clipper ? { adaptive: clipper } : {}) })
      : clipper
        ? secureAdaptiveClipping(clipper)
        : undefined;
  const minSurvivors = config.minSurvivors ?? 1;
  // Distributed: the secure round encodes for this round's C, with per-client update noise z_Delta C / sqrt(minSurvivors) and the bit coordinate's sigma_b.
  const perRound =
    clipper && config.mode === 'distributed'
      ? () => ({ clipNorm: clipper.clipNorm, noiseStddevPerClient: distributedNoiseStddevPerClient(config.noiseMultiplier, clipper.clipNorm, minSurvivors), countNoiseStd: adaptive!.countNoiseStd, minSurvivors })
      : undefined;
  return {
    ledgerPath: opts.ledgerPath,
    aggregation,
    planExtra: () => ({
      privacy: { ...config, ...(clipper ? { clipNorm: clipper.clipNorm } : {}), delta: opts.delta, dimension: opts.dimension, ...(opts.calibration ? { calibration: opts.calibration } : {}) },
      // Institutions record this head with their release: the audit then catches a ledger cut or rewritten later.
      ledgerHead: ledger.head(),
    }),
    async recordRound(s, plan, time) {
      let entry;
      if (s.status === 'completed') {
        const planned = withAccountedSampling(roundPrivacyParams(plan, s.participants)!, plan);
        const params: RoundPrivacyParams = adaptive && planned.mode !== 'dp-sgd' ? { ...planned, adaptive: adaptiveRecord(adaptive, s) } : planned;
        entry = await ledger.append({ kind: 'round', round: s.round, unit: 'institution', params, time, attempt: attemptId(plan), ...(opts.calibration ? { calibration: opts.calibration } : {}) });
      } else {
        entry = await ledger.append({ kind: 'aborted', round: s.round, unit: 'institution', note: s.reason ?? 'aborted', time, attempt: attemptId(plan) });
      }
      return { line: JSON.stringify(entry), epsilon: ledger.spent().epsilon };
    },
    epsilon: () => ledger.spent().epsilon,
    clipNorm: () => clipper?.clipNorm ?? config.clipNorm,
    ...(perRound ? { perRound } : {}),
  };
}

/** What the round's aggregation released about the clip (its adaptive-clipping step), for the ledger. */
function adaptiveRecord(a: AdaptiveClippingSettings, s: RoundSummary): AdaptiveClipRecord {
  if (!s.adaptiveClipping) throw new RangeError(`round ${s.round}: adaptive clipping is on but the aggregation took no adaptive-clipping step (no noisy count)`);
  const { noisyUnclippedFraction, nextClipNorm } = s.adaptiveClipping;
  return { targetQuantile: a.targetQuantile, learningRate: a.learningRate, expectedClients: a.expectedClients, noisyUnclippedFraction, nextClipNorm };
}

/** The clip norm the ledger's last adaptive round set for the next one (resume after a restart). */
function resumedClip(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const v = verifyLedgerFile(path);
  for (const e of [...v.parsed].reverse()) {
    const next = e.kind === 'round' && e.params && e.params.mode !== 'dp-sgd' ? e.params.adaptive?.nextClipNorm : undefined;
    if (next !== undefined) return next;
  }
  return undefined;
}

/**
 * Institution-level rounds account the sampling rate the cohort draw allows (accountedSampling):
 * q = cohort / population only for a Poisson draw by a trusted (central-mode) coordinator, 1
 * otherwise; the draw and the reason go in the ledger entry, where `fedlora audit` rechecks them.
 */
export function withAccountedSampling(params: RoundPrivacyParams, plan: RoundPlan): RoundPrivacyParams {
  if (params.mode === 'dp-sgd' || !plan.sampling) return params;
  const { samplingRate, sampling } = accountedSampling(params.mode, plan.sampling);
  return { ...params, samplingRate, sampling };
}

/** Thrown when the federation ledger file is not what the store committed (cut, rewritten or forked). */
export class LedgerAnchorError extends Error {
  override name = 'LedgerAnchorError';
}

/**
 * The store keeps a copy of every federation ledger line, committed with its round; the file
 * must start with exactly those lines. A file that lacks a committed line, or differs from it,
 * was cut, restored from an old copy or rewritten: this throws, naming the first difference,
 * rather than let new entries be signed onto a history that lost releases. Returns the file's
 * lines beyond the store's (an entry written just before a crash, whose store commit never
 * happened): the caller adds them to the store once the ledger has verified, so the next
 * entries stay aligned.
 */
export function checkLedgerAgainstStore(ledgerPath: string, storeLines: readonly string[]): string[] {
  const file = existsSync(ledgerPath) ? readFileSync(ledgerPath, 'utf8').split('\n').filter((l) => l !== '') : [];
  for (let i = 0; i < storeLines.length; i++) {
    if (file[i] === undefined) {
      throw new LedgerAnchorError(`${ledgerPath} has ${file.length} entries but the store committed ${storeLines.length}: the federation ledger was truncated; restore it (the store holds every committed line) before starting`);
    }
    if (file[i] !== storeLines[i]) {
      throw new LedgerAnchorError(`${ledgerPath}: entry ${i} differs from the line the store committed: the federation ledger was rewritten or forked; restore it from the store before starting`);
    }
  }
  return file.slice(storeLines.length);
}
