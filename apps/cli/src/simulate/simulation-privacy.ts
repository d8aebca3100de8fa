/**
 * The coordinator-side privacy of a simulation: the federation's DP-FedAvg (its signed ledger),
 * the noise recalibrated for the update's dimension, and the plan views the report needs.
 */
import { join } from 'node:path';
import type { LoraConfig } from '@fedlora/model';
import { resolveAdaptiveClipping } from '@fedlora/privacy';
import type { RoundPlan } from '@fedlora/federation';
import { plannedPrivacy } from '@fedlora/federation';
import { cryptoRandomBytes } from '@fedlora/tensor';
import type { FederationPrivacy } from '@fedlora/coordinator';
import { calibrateCentralDpFedAvg, createFederationPrivacy } from '@fedlora/coordinator';
import type { SimulationOptions } from './simulation-types.js';

/** The federation's institution-level DP (its ledger under `outDir`), or undefined without --dp-mode. */
export async function simulationFederationPrivacy(
  o: SimulationOptions,
  env: { outDir: string; dimension: number; minClients: number; samplingRate: number; signerSecretKey: Uint8Array },
): Promise<FederationPrivacy | undefined> {
  const p = o.privacy;
  if (!p) return undefined;
  const distributed = p.mode === 'distributed';
  return createFederationPrivacy({
    config: distributed
      ? { mode: 'distributed', clipNorm: p.clipNorm, noiseMultiplier: p.noiseMultiplier, samplingRate: env.samplingRate, secureAggregation: true, noise: 'skellam', minSurvivors: env.minClients }
      : { mode: 'central', clipNorm: p.clipNorm, noiseMultiplier: p.noiseMultiplier, samplingRate: env.samplingRate, secureAggregation: !!o.secagg },
    delta: p.delta,
    dimension: env.dimension,
    ledgerPath: join(env.outDir, 'federation-ledger.jsonl'),
    signer: { writer: 'coordinator', secretKey: env.signerSecretKey },
    rng: cryptoRandomBytes,
    ...(p.calibration ? { calibration: p.calibration } : {}),
    ...(p.adaptiveClipping
      ? {
          adaptive: resolveAdaptiveClipping({
            noiseMultiplier: p.noiseMultiplier,
            expectedClients: o.clients,
            initialClip: p.clipNorm,
            targetQuantile: p.adaptiveClipping.targetQuantile,
            learningRate: p.adaptiveClipping.learningRate,
            ...(p.adaptiveClipping.bitNoiseStd !== undefined ? { countNoiseStd: p.adaptiveClipping.bitNoiseStd } : {}),
          }),
        }
      : {}),
  });
}

/**
 * Checks the DP and SecAgg+ options against each other; throws RangeError naming what to change.
 */
export function checkSimulationPrivacy(o: SimulationOptions): void {
  const distributed = o.privacy?.mode === 'distributed';
  if (o.task === 'qa' && o.dpSgd) throw new RangeError('simulate: --task qa does not run with DP-SGD yet (drop the --dp-sgd-* options)');
  if (distributed && !o.secagg) throw new RangeError('simulate: distributed noise needs secure aggregation (add --secagg): each update would otherwise leave with only its own share of noise');
  if (o.privacy?.adaptiveClipping && !distributed && o.secagg) {
    throw new RangeError(
      'simulate: adaptive clipping with --dp-mode central needs each clipped-indicator bit, which --secagg hides: use --dp-mode distributed with --secagg (the bits ride in the secure sum), or drop --secagg',
    );
  }
}

/** The part of a round plan a DP-SGD calibration depends on (batch of units, local steps, the LoRA variant: the dimension). */
export function calibrationPlan(o: SimulationOptions, lora: LoraConfig): RoundPlan {
  return { round: 1, attempt: 0, adapterSha256: '', tensors: [], localSteps: o.localSteps, learningRate: o.learningRate, batchSize: o.batchSize, deadlineUnixMs: 0, nonce: '', training: { lora } };
}

/** The noise multiplier applied to the update sum in this round (z_Delta with adaptive clipping). */
export function plannedNoiseMultiplier(plan: RoundPlan): number {
  const p = plannedPrivacy(plan);
  if (!p) throw new RangeError(`round ${plan.round}: the plan carries no privacy parameters`);
  return p.noiseMultiplier;
}

/**
 * Budget first, central mode: the noise multiplier calibrated before the model was loaded did not
 * know the update's dimension, which the ledger needs (calibrateCentralDpFedAvg: the grid, and behind
 * secure aggregation the padded dimension and the encoding's scale); recalibrate for it so the
 * ledger's epsilon stays <= the target. No round's cohort exceeds the population.
 */
export function recalibratedForDimension(o: SimulationOptions, dimension: number): SimulationOptions {
  const p = o.privacy;
  const c = p?.calibration;
  if (!p || !c || p.mode !== 'central') return o;
  const calibration = calibrateCentralDpFedAvg({
    targetEpsilon: c.targetEpsilon,
    delta: c.delta,
    institutions: c.units,
    rounds: c.steps,
    clipNorm: p.clipNorm,
    samplingRate: c.samplingRate,
    dimension,
    ...(o.secagg ? { secureAggregation: { maxCohort: o.clients } } : {}),
  });
  return { ...o, privacy: { ...p, noiseMultiplier: calibration.noiseMultiplier, calibration } };
}
