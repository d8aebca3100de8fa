import type { ClientPrivacyPolicy, LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import { CLIP_INDICATOR_METRIC, DEFAULT_CLIENT_PRIVACY_POLICY, FederationError, attemptId, institutionAccountedParams, ledgerHeadViolation, planPolicyViolation, plannedPrivacy, reportsClipIndicator, validateClientPrivacyPolicy } from '@fedlora/federation';
import type { ClientPrivacyGuard, RoundAnchor } from '@fedlora/privacy';
import { clipL2 } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';

/**
 * The data owner's side of institution-level DP. With a budget (`guard`) the coordinator is not
 * trusted: every plan is first held against this institution's own policy (privacy part present,
 * mode, minimum noise multiplier, maximum clip, unverifiable sampling; client-privacy-policy.ts)
 * and refused, with the reason in the local log and the ledger, if it falls short or if the
 * federation ledger head it announces goes back from the one this institution last recorded
 * (truncated or forked); then against
 * the budget, accounted at sampling rate 1 (a client never takes q from the plan on trust) and,
 * for distributed noise, for the fewest survivors that still complete the round (the worst case).
 * It clips the update to the plan's L2 bound before it leaves and records the release in the
 * institution's own signed ledger, with the round attempt and the federation ledger head the
 * plan announced (which anchor the federation ledger for the audit). With adaptive clipping it also reports its clipped-indicator bit.
 */
export class PrivacyGuardedTrainer implements LocalTrainer {
  private readonly policy: ClientPrivacyPolicy;

  constructor(
    private readonly inner: LocalTrainer,
    private readonly guard: ClientPrivacyGuard | undefined,
    private readonly now: () => Date = () => new Date(),
    policy: ClientPrivacyPolicy = DEFAULT_CLIENT_PRIVACY_POLICY,
  ) {
    validateClientPrivacyPolicy(policy);
    this.policy = policy;
  }

  get numExamples(): number {
    return this.inner.numExamples;
  }

  async accept(plan: RoundPlan): Promise<{ accept: true } | { accept: false; reason: string; stop?: string; detail?: string }> {
    if (this.guard) {
      const violation = this.violation(plan);
      if (violation) {
        // No head recorded with a refusal: a head this client refused must not become the one later plans are held to.
        await this.guard.refuse(plan.round, violation, { time: this.now().toISOString(), attempt: attemptId(plan) });
        // A coordinator that plans below the policy once will do so again: stop loudly rather than decline every round.
        return { accept: false, reason: 'refused: policy', detail: violation, stop: `the coordinator's plan falls short of this institution's privacy policy: ${violation}` };
      }
    }
    const inner = (await this.inner.accept?.(plan)) ?? { accept: true as const };
    if (!inner.accept) return inner;
    if (!this.guard) return { accept: true };
    const decision = this.guard.plan(institutionAccountedParams(plan)!);
    if (decision.accept) return { accept: true };
    await this.guard.refuse(plan.round, decision.message, { time: this.now().toISOString(), attempt: attemptId(plan) });
    return { accept: false, reason: 'refused: budget', detail: decision.message };
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress) {
    // Checked again here: train() must never release an update that accept() would have refused.
    const violation = this.violation(plan);
    if (violation) throw new FederationError('failed-precondition', violation);
    const r = await this.inner.train(plan, global, progress);
    const p = plannedPrivacy(plan);
    if (!p) return r;
    const { clipped, norm } = clipL2(r.delta, p.clipNorm);
    await this.guard?.record(plan.round, institutionAccountedParams(plan)!, { time: this.now().toISOString(), ...anchorOf(plan) });
    // The norm before clipping stays here: sent, it would tell the coordinator more than the noisy count releases.
    const metrics: Record<string, number> = { ...r.metrics };
    // Adaptive clipping (Andrew et al. 2021, Algorithm 1): b_i = 1[||Delta_i|| <= C] for this round's C; the coordinator releases only its noisy sum.
    if (reportsClipIndicator(plan)) metrics[CLIP_INDICATOR_METRIC] = norm <= p.clipNorm ? 1 : 0;
    return { ...r, delta: clipped, metrics };
  }

  /** What is wrong with the plan for an institution with a budget: its privacy part, or a federation ledger head that went back. */
  private violation(plan: RoundPlan): string | undefined {
    if (!this.guard) return undefined;
    return planPolicyViolation(plan, this.policy) ?? ledgerHeadViolation(plan, this.guard.lastFederationHead());
  }
}

/** The round attempt and the federation ledger head the plan announced, as this institution's ledger records them. */
function anchorOf(plan: RoundPlan): RoundAnchor {
  return { attempt: attemptId(plan), ...(plan.ledgerHead ? { federationHead: { entries: plan.ledgerHead.entries, hash: plan.ledgerHead.hash } } : {}) };
}
