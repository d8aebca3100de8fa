/**
 * The coordinator-side privacy of a simulation: the federation's DP-FedAvg (its signed ledger),
 * the noise recalibrated for the update's dimension, and the plan views the report needs.
 */
import { join } from 'node:path';
import type { LoraConfig } from '@fedlora/model';
import { calibrateDpFedAvg, resolveAdaptiveClipping } from '@fedlora/privacy';
import type { RoundPlan } from '@fedlora/federation';
import { plannedPrivacy } from '@fedlora/federation';
import { chooseEncodingParams } from '@fedlora/secagg';
import { cryptoRandomBytes } from '@fedlora/tensor';
import type { FederationPrivacy } from '@fedlora/coordinator';
import { createFederationPrivacy } from '@fedlora/coordinator';
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
 * know the update's dimension, which the ledger needs to account the grid (sqrt(d) h of extra
 * sensitivity, central-grid.ts); recalibrate for it so the ledger's epsilon stays <= the target.
 * Behind secure aggregation the ledger accounts what plannedPrivacy (libs/federation) derives from
 * the round's encoding: the padded Hadamard dimension and the encoding's integer scale (its
 * rounding, sqrt(D) / scale). The scale is chosen as the coordinator chooses it for central noise
 * (chooseEncodingParams, 32 bits, no noise share) for the whole population: a round's cohort is
 * never larger, and a smaller cohort gets a larger scale, so less sensitivity than calibrated for.
 */
export function recalibratedForDimension(o: SimulationOptions, dimension: number): SimulationOptions {
  const p = o.privacy;
  const c = p?.calibration;
  if (!p || !c || p.mode !== 'central') return o;
  const encoding = o.secagg ? chooseEncodingParams({ n: o.clients, d: dimension, clip: p.clipNorm, bits: 32 }) : undefined;
  const calibration = calibrateDpFedAvg({
    targetEpsilon: c.targetEpsilon,
    delta: c.delta,
    institutions: c.units,
    rounds: c.steps,
    config: { mode: 'central', clipNorm: p.clipNorm, samplingRate: c.samplingRate, secureAggregation: !!o.secagg, ...(encoding ? { scale: encoding.scale } : {}) },
    dimension: encoding ? encoding.paddedDim : dimension,
  });
  return { ...o, privacy: { ...p, noiseMultiplier: calibration.noiseMultiplier, calibration } };
}
