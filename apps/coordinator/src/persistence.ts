import type { EventLogger, RoundPlan, RoundSummary, ServerStrategy } from '@fedlora/federation';
import { decodeStrategyState, encodeStrategyState } from '@fedlora/federation';
import type { FederationStore } from '@fedlora/store';
import { StoreError, sha256Hex } from '@fedlora/store';
import type { NamedTensors } from '@fedlora/tensor';
import { parseSafetensors, serializeSafetensors, sha256Named } from '@fedlora/tensor';

/**
 * Two hashes name an adapter, and they are never given the same name:
 *
 * - `adapterSha256` (canonical): sha256Named (libs/tensor) over the tensors themselves, sorted by
 *   name, each as name NUL shape NUL little-endian float32 bytes. It does not depend on the file
 *   format or its metadata. It is what round plans, round summaries, `fedlora status --json`,
 *   `round.completed` logs and clients use, and what an auditor compares.
 * - `checkpointSha256`: SHA-256 of the safetensors file bytes the store keeps (the store's
 *   integrity check, verified at every load; the store's column and API call it `sha256`).
 *
 * Each checkpoint carries its `adapterSha256` in the safetensors metadata, so the file links the
 * two: both appear in the `checkpoint.committed` and `federation.resumed` events.
 */
export const ADAPTER_SHA256_METADATA_KEY = 'adapterSha256';

/** What the coordinator needs from the store to resume and to persist rounds. */
export interface PersistenceHooks {
  /** Rounds already committed (the run resumes after them). */
  startAfterRound: number;
  /** The adapter of the last committed round, if any. */
  resumeAdapter?: NamedTensors;
  /** Round attempts that ended before this start (committed or aborted), oldest first. */
  previousRounds: RoundSummary[];
  /** The clients of the last committed round: after a restart, the first round waits for them to rejoin. */
  rejoinClients: string[];
  onRoundStart(plan: RoundPlan, cohort: string[]): void;
  /** Commits an ended round: checkpoint, server optimizer state and `ledgerLine` in one store transaction. */
  onRoundEnd(summary: RoundSummary, adapter: NamedTensors | null, plan: RoundPlan, ledgerLine?: string): void;
  /**
   * The round-end rule in one place: the round's signed ledger entry is appended first (by
   * `recordLedger`), then committed with the checkpoint and the server optimizer's state in one
   * store transaction. A crash in between reruns the round and records it again (over-counting
   * the privacy spent, never under-counting).
   */
  endRound(summary: RoundSummary, adapter: NamedTensors | null, plan: RoundPlan): Promise<void>;
}

/** What attachStore commits besides the adapter. */
export interface PersistenceOptions {
  /** The server optimizer: restored from the last checkpoint, its state committed with each one. */
  strategy?: ServerStrategy;
  /** Appends the round's signed ledger entry (when DP is on) and returns its line for the store. */
  recordLedger?: (summary: RoundSummary, plan: RoundPlan) => Promise<string | undefined>;
}

/**
 * Wires a FederationStore to the round loop: at start-up a round left open by a crash is marked
 * aborted (it will be rerun from the last committed adapter, with fresh keys and nonce); each
 * round is recorded when it opens; a completed round's checkpoint, state and ledger line are
 * committed in one transaction, so a kill -9 never leaves half a round.
 */
export function attachStore(store: FederationStore, log: EventLogger, options: PersistenceOptions = {}): PersistenceHooks {
  const { strategy, recordLedger } = options;
  const aborted = store.abortIncompleteRounds('coordinator restarted while the round was open');
  for (const r of aborted) log.warn({ event: 'round.aborted', round: r.round, attempt: r.attempt, reason: 'coordinator restarted while the round was open' });
  const last = store.latestCommitted();
  let resumeAdapter: NamedTensors | undefined;
  if (last) {
    const { bytes, serverState } = store.loadCheckpoint(last.round);
    const { tensors, metadata } = parseSafetensors(bytes, `checkpoint of round ${last.round}`);
    const adapterSha256 = sha256Named(tensors);
    const recorded = metadata[ADAPTER_SHA256_METADATA_KEY];
    if (recorded !== undefined && recorded !== adapterSha256) {
      throw new StoreError(
        'corrupt',
        `checkpoint of round ${last.round}: its metadata says adapterSha256 ${recorded}, its tensors hash to ${adapterSha256}; restore the data directory from a backup`,
      );
    }
    resumeAdapter = tensors;
    if (strategy && serverState) {
      const state = decodeStrategyState(serverState);
      strategy.restore(state);
      log.info({ event: 'strategy.restored', round: last.round, strategy: state.name, step: state.step });
    } else if (strategy) {
      log.warn({ event: 'strategy.not-restored', round: last.round, strategy: strategy.name, reason: 'the checkpoint carries no server optimizer state (written by an older fedlora): the optimizer restarts from fresh moments' });
    }
    log.info({ event: 'federation.resumed', round: last.round, adapterSha256, checkpointSha256: last.sha256 });
  }
  const rounds = store.listRounds();
  const lastCommitted = last ? rounds.find((r) => r.round === last.round && r.attempt === last.attempt) : undefined;
  const hooks: PersistenceHooks = {
    startAfterRound: last?.round ?? 0,
    resumeAdapter,
    rejoinClients: lastCommitted ? [...lastCommitted.participants] : [],
    previousRounds: rounds
      .filter((r) => r.state === 'committed' || r.state === 'aborted')
      .map(
        (r): RoundSummary => ({
          round: r.round,
          attempt: r.attempt,
          status: r.state === 'committed' ? 'completed' : 'aborted',
          participants: r.state === 'committed' ? r.participants.length : 0,
          participantNames: r.state === 'committed' ? [...r.participants] : [],
          // The store keeps a committed round's survivors and an aborted round's cohort.
          cohort: r.participants.length,
          dropped: [],
          declined: [],
          trainLoss: null,
          numExamples: 0,
          adapterSha256: null,
          ...(r.reason ? { reason: r.reason } : {}),
          startedAt: r.startedAt,
          endedAt: r.committedAt ?? r.updatedAt,
          metrics: {},
          restored: true,
        }),
      ),
    onRoundStart(plan, cohort) {
      store.beginRound(plan.round, plan, cohort);
      store.setRoundState(plan.round, 'training');
    },
    onRoundEnd(summary, adapter, _plan, ledgerLine) {
      if (summary.status === 'completed' && adapter) {
        const adapterSha256 = sha256Named(adapter);
        const checkpoint = serializeSafetensors(adapter, { metadata: { round: String(summary.round), [ADAPTER_SHA256_METADATA_KEY]: adapterSha256 } });
        const checkpointSha256 = sha256Hex(checkpoint);
        const serverState = strategy ? encodeStrategyState(strategy.state()) : undefined;
        store.commitRound(summary.round, { checkpoint, sha256: checkpointSha256, ledgerLine, participants: summary.participantNames, serverState });
        log.info({ event: 'checkpoint.committed', round: summary.round, adapterSha256, checkpointSha256 });
      } else {
        store.setRoundState(summary.round, 'aborted', { reason: summary.reason ?? 'aborted' });
        if (ledgerLine) store.appendLedger(ledgerLine, summary.round);
      }
    },
    async endRound(summary, adapter, plan) {
      const ledgerLine = await recordLedger?.(summary, plan);
      hooks.onRoundEnd(summary, adapter, plan, ledgerLine);
    },
  };
  return hooks;
}
