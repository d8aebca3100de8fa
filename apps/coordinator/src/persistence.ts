import type { EventLogger, RoundPlan, RoundSummary } from '@fedlora/federation';
import type { FederationStore } from '@fedlora/store';
import { sha256Hex } from '@fedlora/store';
import type { NamedTensors } from '@fedlora/tensor';
import { parseSafetensors, serializeSafetensors } from '@fedlora/tensor';

/** What the coordinator needs from the store to resume and to persist rounds. */
export interface PersistenceHooks {
  /** Rounds already committed (the run resumes after them). */
  startAfterRound: number;
  /** The adapter of the last committed round, if any. */
  resumeAdapter?: NamedTensors;
  onRoundStart(plan: RoundPlan, cohort: string[]): void;
  onRoundEnd(summary: RoundSummary, adapter: NamedTensors | null, plan: RoundPlan, ledgerLine?: string): void;
}

/**
 * Wires a FederationStore to the round loop: at start-up a round left open by a crash is marked
 * aborted (it will be rerun from the last committed adapter, with fresh keys and nonce); each
 * round is recorded when it opens; a completed round's checkpoint, state and ledger line are
 * committed in one transaction, so a kill -9 never leaves half a round.
 */
export function attachStore(store: FederationStore, log: EventLogger): PersistenceHooks {
  const aborted = store.abortIncompleteRounds('coordinator restarted while the round was open');
  for (const r of aborted) log.warn({ event: 'round.aborted', round: r.round, attempt: r.attempt, reason: 'coordinator restarted while the round was open' });
  const last = store.latestCommitted();
  let resumeAdapter: NamedTensors | undefined;
  if (last) {
    const { bytes } = store.loadCheckpoint(last.round);
    resumeAdapter = parseSafetensors(bytes, `checkpoint of round ${last.round}`).tensors;
    log.info({ event: 'federation.resumed', round: last.round, sha256: last.sha256 });
  }
  return {
    startAfterRound: last?.round ?? 0,
    resumeAdapter,
    onRoundStart(plan, cohort) {
      store.beginRound(plan.round, plan, cohort);
      store.setRoundState(plan.round, 'training');
    },
    onRoundEnd(summary, adapter, _plan, ledgerLine) {
      if (summary.status === 'completed' && adapter) {
        const checkpoint = serializeSafetensors(adapter, { metadata: { round: String(summary.round) } });
        store.commitRound(summary.round, { checkpoint, sha256: sha256Hex(checkpoint), ledgerLine, participants: summary.participantNames });
      } else {
        store.setRoundState(summary.round, 'aborted', { reason: summary.reason ?? 'aborted' });
        if (ledgerLine) store.appendLedger(ledgerLine, summary.round);
      }
    },
  };
}
