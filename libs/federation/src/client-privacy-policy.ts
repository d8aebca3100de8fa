import { createHash } from 'node:crypto';
import type { LedgerHead, RoundPrivacyParams } from '@fedlora/privacy';
import { institutionSampling } from '@fedlora/privacy';
import { plannedPrivacy, plannedSurvivors, roundPrivacyParams } from './plan-privacy.js';
import type { RoundPlan } from './types.js';

/**
 * What an institution with an institution-level budget demands of every round plan, whatever the
 * coordinator sends. The coordinator is not trusted: a plan whose privacy part is absent,
 * malformed or weaker than this policy is refused before anything is trained or sent, so an
 * update never leaves unclipped and un-noised because a plan said nothing about privacy.
 */
export interface ClientPrivacyPolicy {
  /**
   * The weakest DP mode accepted. `distributed`: this client adds its own share of integer noise
   * before the update leaves (under secure aggregation), so the coordinator never holds a less
   * noisy sum than planned for `minSurvivors`. `central`: the coordinator adds the noise, i.e. the
   * institution trusts the coordinator with its clipped update (or, under secure aggregation, with
   * the un-noised sum); its ledger's epsilon then holds only against those who see the model.
   */
  minMode: 'central' | 'distributed';
  /** Refuse plans whose noise multiplier z (for adaptive central rounds: the effective one) is below this. */
  minNoiseMultiplier?: number;
  /** Refuse plans whose clip norm C is above this. */
  maxClipNorm?: number;
  /**
   * A plan that claims client sampling (samplingRate < 1): this client cannot verify that it was
   * drawn at random and hidden from the coordinator, so its ledger always accounts q = 1
   * (`account-as-one`, the default); `refuse` declines such plans instead.
   */
  unverifiedSampling?: 'account-as-one' | 'refuse';
}

/** The default policy: noise must be added by the institution itself (distributed mode). */
export const DEFAULT_CLIENT_PRIVACY_POLICY: ClientPrivacyPolicy = { minMode: 'distributed', unverifiedSampling: 'account-as-one' };

/** Checks a policy's own values; throws RangeError naming the bad field. */
export function validateClientPrivacyPolicy(p: ClientPrivacyPolicy): void {
  if (p.minMode !== 'central' && p.minMode !== 'distributed') throw new RangeError(`policy.minMode must be "central" or "distributed", received ${JSON.stringify(p.minMode)}`);
  if (p.minNoiseMultiplier !== undefined && !(p.minNoiseMultiplier > 0)) throw new RangeError(`policy.minNoiseMultiplier must be > 0, received ${p.minNoiseMultiplier}`);
  if (p.maxClipNorm !== undefined && !(p.maxClipNorm > 0)) throw new RangeError(`policy.maxClipNorm must be > 0, received ${p.maxClipNorm}`);
  if (p.unverifiedSampling !== undefined && p.unverifiedSampling !== 'account-as-one' && p.unverifiedSampling !== 'refuse') {
    throw new RangeError(`policy.unverifiedSampling must be "account-as-one" or "refuse", received ${JSON.stringify(p.unverifiedSampling)}`);
  }
}

/**
 * Why a round plan falls short of the institution's policy, or undefined when it meets it. Every
 * message names the plan's value and the policy's bound, so the operator sees what to change.
 */
export function planPolicyViolation(plan: RoundPlan, policy: ClientPrivacyPolicy): string | undefined {
  const r = `round ${plan.round}`;
  if (plan.privacy === undefined) {
    return `${r}: the plan carries no privacy parameters, but this institution has a privacy budget: it will not send an update without clipping and noise`;
  }
  let p;
  try {
    p = plannedPrivacy(plan)!;
  } catch (err) {
    return `${r}: the plan's privacy parameters are refused: ${(err as Error).message}`;
  }
  if (policy.minMode === 'distributed' && p.mode !== 'distributed') {
    return `${r}: the plan uses ${p.mode} noise (added by the coordinator), but this institution's policy requires distributed noise added before its update leaves (privacy.policy.minMode: distributed)`;
  }
  if (p.mode === 'distributed') {
    const cohort = Object.keys(plan.secagg?.ids ?? {}).length;
    // Each share carries 1/minSurvivors of the variance: a minSurvivors above the cohort would leave every possible sum under-noised.
    if (!(p.minSurvivors! <= cohort)) return `${r}: the plan plans its noise for ${p.minSurvivors} survivors but names a cohort of ${cohort}: the sum would carry too little noise`;
  }
  const z = p.mode === 'central' && p.countNoiseStd !== undefined ? (p.noiseMultiplier ** -2 + (2 * p.countNoiseStd) ** -2) ** -0.5 : p.noiseMultiplier;
  if (policy.minNoiseMultiplier !== undefined && !(z >= policy.minNoiseMultiplier)) {
    return `${r}: the plan's noise multiplier ${z} is below this institution's minimum ${policy.minNoiseMultiplier} (privacy.policy.minNoiseMultiplier)`;
  }
  if (policy.maxClipNorm !== undefined && !(p.clipNorm <= policy.maxClipNorm)) {
    return `${r}: the plan's clip norm ${p.clipNorm} is above this institution's maximum ${policy.maxClipNorm} (privacy.policy.maxClipNorm)`;
  }
  const q = p.samplingRate ?? 1;
  if (q < 1 && policy.unverifiedSampling === 'refuse') {
    return `${r}: the plan claims client sampling at rate ${q}, which this institution cannot verify (privacy.policy.unverifiedSampling: refuse)`;
  }
  return undefined;
}

/**
 * The parameters an institution accounts for a round in its own ledger: the plan's mechanism
 * with `survivors`, but always at sampling rate q = 1. Amplification by sampling (Mironov,
 * Talwar, Zhang 2019) needs the institution's inclusion to be random and hidden from the
 * adversary; the coordinator draws the cohort and knows who took part, and a client cannot check
 * the draw, so it never takes q from the plan on trust (issue 16, finding 3: a fixed-size draw of
 * max(minClients, ceil(q n)) had inclusion rate 0.6 where the plan said 0.2). The draw the plan
 * announces (RoundPlan.sampling, sent over gRPC) is recorded in the entry with its basis, so the
 * institution's ledger shows what the federation claims and that it did not take it.
 */
export function institutionAccountedParams(plan: RoundPlan, survivors = plannedSurvivors(plan)): RoundPrivacyParams | undefined {
  const params = roundPrivacyParams(plan, survivors);
  if (!params || params.mode === 'dp-sgd') return params;
  const { sampling: _drawByCoordinator, ...rest } = params;
  // The draw the plan announced is recorded beside q = 1, with why (institutionSampling).
  return { ...rest, ...(plan.sampling ? institutionSampling(params.mode, plan.sampling) : { samplingRate: 1 }) };
}

/**
 * The id of a round attempt that both ledgers record (`attempt`): a hash of the round and the
 * plan's nonce, so the audit can tell attempts of one round apart without the nonce itself.
 */
export function attemptId(plan: Pick<RoundPlan, 'round' | 'nonce'>): string {
  return createHash('sha256').update(`fedlora-round-attempt\0${plan.round}\0${plan.nonce}`, 'utf8').digest('hex').slice(0, 32);
}

/**
 * Why the federation ledger head a plan announces cannot follow the one this institution last
 * recorded (`last`), or undefined. A ledger only grows: fewer entries than before means it was
 * cut, as many with another hash means it was forked, and no head after one was seen means the
 * coordinator stopped anchoring its ledger.
 */
export function ledgerHeadViolation(plan: RoundPlan, last: LedgerHead | undefined): string | undefined {
  const h = plan.ledgerHead;
  if (!last) return undefined;
  const r = `round ${plan.round}`;
  if (!h) return `${r}: the plan announces no federation ledger head, but an earlier plan announced ${last.entries} entries: the coordinator stopped anchoring its ledger`;
  if (!(Number.isSafeInteger(h.entries) && h.entries >= 0) || !/^[0-9a-f]{64}$/.test(h.hash)) return `${r}: the plan's federation ledger head is malformed`;
  if (h.entries < last.entries) return `${r}: the federation ledger went back from ${last.entries} entries (recorded here) to ${h.entries}: it was truncated or replaced`;
  if (h.entries === last.entries && h.hash !== last.hash) return `${r}: the federation ledger has ${h.entries} entries as before but another last entry: it was forked`;
  return undefined;
}
