import type { NamedTensors } from '@fedlora/tensor';
import { sha256Named } from '@fedlora/tensor';
import type { Clock, EventLogger } from './clock.js';
import { fullDelta } from './lora-variant.js';
import { combineEvaluations } from './round-evaluation.js';
import type { RoundResult } from './round-protocol.js';
import type { ServerStrategy } from './strategy.js';
import type { RoundSummary } from './types.js';

/** What a closed round attempt is concluded from. */
export interface RoundConclusionInput {
  round: number;
  attempt: number;
  cohort: readonly string[];
  declined: ReadonlyMap<string, string>;
  startedAt: number;
  /** The protocol's result once closed (survivors' reports, misbehaviour, the aggregate). */
  result: RoundResult;
  minClients: number;
  global: NamedTensors;
  strategy: ServerStrategy;
  clock: Clock;
  log: EventLogger;
}

/**
 * Concludes a closed round attempt: who reported, dropped, declined or misbehaved; the
 * example-weighted train loss and federated evaluation; and, when at least `minClients`
 * reported and the protocol did not fail, the new global adapter (the strategy applied to the
 * aggregate). Tensors the round did not carry (FFA-LoRA's frozen A) are kept bit for bit.
 */
export function concludeRound(input: RoundConclusionInput): { summary: RoundSummary; newAdapter: NamedTensors | null; misbehaved: Array<{ client: string; reason: string }> } {
  const { round, attempt, cohort, declined, startedAt, result, minClients, global, strategy, clock, log } = input;
    const reports = result.survivors;
    const misbehaved = [...(result.misbehaved ?? [])].map(([client, reason]) => ({ client, reason }));
    for (const m of misbehaved) {
      log.warn({ event: 'client.misbehaved', round, attempt, client: m.client, reason: m.reason, consequence: 'dropped from this attempt and left out of reruns of this round' });
    }
    const dropped = cohort.filter((c) => !reports.has(c) && !declined.has(c));
    for (const c of dropped) log.warn({ event: 'client.dropped', round, client: c, reason: misbehaved.find((m) => m.client === c)?.reason ?? 'no update before the deadline' });

    const participants = reports.size;
    const numExamples = [...reports.values()].reduce((a, b) => a + b.numExamples, 0);
    const trainLoss = numExamples ? [...reports.values()].reduce((a, b) => a + b.trainLoss * b.numExamples, 0) / numExamples : null;
    // Federated evaluation of the global adapter this round started from (round-evaluation.ts; secure rounds: its sums, secure-evaluation.ts).
    const evaluation = result.evaluation ?? combineEvaluations([...reports.values()].map((v) => v.metrics));
    const outcome = { round, attempt, participants, participantNames: [...reports.keys()].sort(), cohort: cohort.length, dropped, declined: [...declined.keys()], trainLoss, numExamples, startedAt, ...(evaluation ? { evaluation } : {}), ...(misbehaved.length > 0 ? { misbehaved } : {}) };
    let summary: RoundSummary;
    let newAdapter: NamedTensors | null = null;
    if (result.failure || participants < minClients) {
      const reason = result.failure ?? `${participants} of ${cohort.length} clients reported, minClients is ${minClients}`;
      summary = { ...outcome, status: 'aborted', adapterSha256: null, reason, endedAt: clock.now(), metrics: {} };
      log.warn({ event: 'round.aborted', round, attempt, reason });
    } else {
      try {
        const { delta, metrics, adaptiveClipping } = result.aggregate();
        newAdapter = strategy.apply(global, fullDelta(global, delta));
        // Tensors the round did not carry (FFA-LoRA's frozen A) stay bit for bit what every client trained with.
        for (const [name, t] of global) if (!delta.has(name)) newAdapter.set(name, t);
        summary = { ...outcome, status: 'completed', adapterSha256: sha256Named(newAdapter), endedAt: clock.now(), metrics, ...(adaptiveClipping ? { adaptiveClipping } : {}) };
      } catch (err) {
        const reason = `aggregation failed: ${err instanceof Error ? err.message : String(err)}`;
        summary = { ...outcome, status: 'aborted', adapterSha256: null, reason, endedAt: clock.now(), metrics: {} };
        newAdapter = null;
        log.error({ event: 'round.aborted', round, attempt, reason });
      }
    }
  return { summary, newAdapter, misbehaved };
}
