import type { LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import { CLIP_INDICATOR_METRIC, plannedPrivacy, plannedSurvivors, reportsClipIndicator, roundPrivacyParams } from '@fedlora/federation';
import type { ClientPrivacyGuard } from '@fedlora/privacy';
import { clipL2 } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';

/**
 * The data owner's side of institution-level DP: before a round it checks what the plan would
 * cost against this institution's own budget and declines if it would overspend (the coordinator
 * learns only "refused: budget"); it clips the update to the plan's L2 bound before it leaves,
 * and records the release in the institution's own signed ledger. For distributed noise the
 * cost is planned for the fewest survivors that still complete the round (the worst case).
 * With adaptive clipping it also reports its clipped-indicator bit for the round's clip norm.
 */
export class PrivacyGuardedTrainer implements LocalTrainer {
  constructor(
    private readonly inner: LocalTrainer,
    private readonly guard: ClientPrivacyGuard | undefined,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get numExamples(): number {
    return this.inner.numExamples;
  }

  async accept(plan: RoundPlan): Promise<{ accept: true } | { accept: false; reason: string; stop?: string; detail?: string }> {
    const inner = (await this.inner.accept?.(plan)) ?? { accept: true as const };
    if (!inner.accept) return inner;
    const p = plannedPrivacy(plan);
    if (!p || !this.guard) return { accept: true };
    const decision = this.guard.plan(roundPrivacyParams(plan, plannedSurvivors(plan))!);
    if (decision.accept) return { accept: true };
    await this.guard.refuse(plan.round, decision.message, { time: this.now().toISOString() });
    return { accept: false, reason: 'refused: budget', detail: decision.message };
  }

  async train(plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress) {
    const r = await this.inner.train(plan, global, progress);
    const p = plannedPrivacy(plan);
    if (!p) return r;
    const { clipped, norm } = clipL2(r.delta, p.clipNorm);
    await this.guard?.record(plan.round, roundPrivacyParams(plan, plannedSurvivors(plan))!, { time: this.now().toISOString() });
    // The norm before clipping stays here: sent, it would tell the coordinator more than the noisy count releases.
    const metrics: Record<string, number> = { ...r.metrics };
    // Adaptive clipping (Andrew et al. 2021, Algorithm 1): b_i = 1[||Delta_i|| <= C] for this round's C; the coordinator releases only its noisy sum.
    if (reportsClipIndicator(plan)) metrics[CLIP_INDICATOR_METRIC] = norm <= p.clipNorm ? 1 : 0;
    return { ...r, delta: clipped, metrics };
  }
}
