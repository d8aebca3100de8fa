/**
 * A DP-SGD client's privatised update, kept for the retry of the same round.
 *
 * A round attempt can abort after this institution trained (a secure-aggregation stage timed out
 * while another institution was still training, a member vanished, ...); the coordinator then
 * reruns the SAME round from the SAME global adapter with a new nonce. The update this client
 * trained for the aborted attempt is already the output of the DP-SGD mechanism (clipped per
 * unit, noised; its cost recorded in the record-level ledger before it could leave). Sending that
 * same output again is post-processing of one release (Dwork & Roth 2014, "The Algorithmic
 * Foundations of Differential Privacy", Proposition 2.1): no new privacy loss, so nothing new is
 * spent, and the retry needs no training (it is immediate, which also keeps a slow machine from
 * losing attempt after attempt). Training again instead would draw a fresh noisy output and spend
 * the round's budget a second time; an institution whose budget was calibrated for the planned
 * rounds would then refuse the last round.
 *
 * What must match for the reuse: the round, the global adapter (the plan's hash AND the bytes the
 * trainer received), and every plan field that determines the DP-SGD output or its cost (tensor
 * layout, local steps, batch size and so the sampling rate, learning rate, the `training` part:
 * LoRA layout and variant, planned rounds behind the calibrated noise, FedProx mu; and the
 * institution-level `privacy` part, conservatively). Anything else that differs (attempt, nonce,
 * deadline, secure-aggregation cohort and seeds, ledger head) is per attempt and does not enter
 * the DP-SGD computation; secure aggregation re-encodes the reused update with fresh masks, fresh
 * rounding and (institution-level DP) a fresh noise share, which the institution-level guard
 * accounts per attempt as before. A plan that differs in any of the fields above trains afresh and
 * spends through the budget guard, which refuses it if the budget cannot pay.
 *
 * The trade-off (SECURITY.md): secure aggregation hides single updates within one attempt; a
 * hostile coordinator that completes unmasking and then claims an abort, several times with
 * different survivor sets, can difference the sums of attempts in which the same update was
 * reused and isolate it. What it isolates is this DP-SGD output, protected at the ledger's
 * record-level epsilon; without reuse it would instead spend this institution's budget with every
 * aborted attempt. An institution that prefers a fresh draw per attempt turns reuse off
 * (`dpSgd.reuseOnRetry: false`).
 *
 * Only the latest release is kept, in memory only (it is derived from private data: it is never
 * logged or written); a restarted client has none and trains again, spending through the guard.
 */
import type { RoundPlan } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { cloneNamed, sha256Named } from '@fedlora/tensor';
import { canonicalJson } from '@fedlora/privacy';

/** What a trainer returns for a round (LocalTrainer.train's result). */
export interface TrainedUpdate {
  delta: NamedTensors;
  numExamples: number;
  trainLoss: number;
  metrics: Record<string, number>;
}

/**
 * The plan fields that determine a DP-SGD release and its cost (see the module comment), as one
 * canonical string: two plans with the same key ask for the same mechanism on the same input.
 */
export function releaseKey(plan: RoundPlan): string {
  return canonicalJson({
    round: plan.round,
    adapterSha256: plan.adapterSha256,
    tensors: plan.tensors,
    localSteps: plan.localSteps,
    batchSize: plan.batchSize,
    learningRate: plan.learningRate,
    training: plan.training ?? null,
    privacy: plan.privacy ?? null,
  });
}

/** The latest privatised update of this client, for the retries of its round (module comment). */
export class ReleasedUpdate {
  private kept?: { key: string; globalSha: string; update: TrainedUpdate };

  /** Whether a retry with this plan would reuse the kept update (no training, nothing spent). */
  covers(plan: RoundPlan): boolean {
    return this.kept?.key === releaseKey(plan);
  }

  /** A copy of the kept update when `plan` and the global adapter received are those it was trained for. */
  reuse(plan: RoundPlan, global: NamedTensors): TrainedUpdate | undefined {
    const k = this.kept;
    if (!k || k.key !== releaseKey(plan) || k.globalSha !== sha256Named(global)) return undefined;
    return copy(k.update);
  }

  /** Keeps `update` (a copy) as the release for `plan` trained from `global`, replacing any earlier one. */
  keep(plan: RoundPlan, global: NamedTensors, update: TrainedUpdate): void {
    this.forget();
    this.kept = { key: releaseKey(plan), globalSha: sha256Named(global), update: copy(update) };
  }

  /** Drops the kept update and zeroes its values. */
  forget(): void {
    for (const t of this.kept?.update.delta.values() ?? []) t.data.fill(0);
    this.kept = undefined;
  }
}

function copy(u: TrainedUpdate): TrainedUpdate {
  return { delta: cloneNamed(u.delta), numExamples: u.numExamples, trainLoss: u.trainLoss, metrics: { ...u.metrics } };
}
