import { describe, expect, it } from 'vitest';
import type { EventLogger, RoundPlan, RoundSummary } from '@fedlora/federation';
import { createStrategy } from '@fedlora/federation';
import { openMemoryStore, sha256Hex } from '@fedlora/store';
import type { NamedTensors } from '@fedlora/tensor';
import { parseSafetensors, serializeSafetensors, sha256Named } from '@fedlora/tensor';
import { ADAPTER_SHA256_METADATA_KEY, attachStore } from './persistence.js';

const adapter = (): NamedTensors =>
  new Map([
    ['lora_B', { shape: [2, 2], data: new Float32Array([0.5, -1, 2, 0]) }],
    ['lora_A', { shape: [3], data: new Float32Array([1, 2, 3]) }],
  ]);
const plan = (round: number): RoundPlan => ({ round, attempt: 1, adapterSha256: 'x', tensors: [], localSteps: 1, learningRate: 0.1, batchSize: 1, deadlineUnixMs: 0, nonce: 'n' });
const summary = (round: number, adapterSha256: string): RoundSummary => ({
  round,
  attempt: 1,
  status: 'completed',
  participants: 1,
  participantNames: ['a'],
  cohort: 1,
  dropped: [],
  declined: [],
  trainLoss: 1,
  numExamples: 1,
  adapterSha256,
  startedAt: 0,
  endedAt: 1,
  metrics: {},
});

function recorder(): EventLogger & { events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const push = (e: Record<string, unknown>) => void events.push(e);
  return { events, info: push, warn: push, error: push };
}

describe('adapter hashes in the store and the logs', () => {
  it('names the tensor hash adapterSha256 and the file hash checkpointSha256, links them in the checkpoint, and resumes with both', () => {
    const store = openMemoryStore();
    const log = recorder();
    const hooks = attachStore(store, log);
    const a = adapter();
    const adapterSha256 = sha256Named(a); // what the round summary, the next plan and `fedlora status --json` carry
    hooks.onRoundStart(plan(1), ['a']);
    hooks.onRoundEnd(summary(1, adapterSha256), a, plan(1));

    const { bytes, sha256: checkpointSha256 } = store.loadCheckpoint(1);
    expect(checkpointSha256).toBe(sha256Hex(bytes));
    expect(checkpointSha256).not.toBe(adapterSha256); // two different things, never under one name
    expect(parseSafetensors(bytes).metadata[ADAPTER_SHA256_METADATA_KEY]).toBe(adapterSha256);
    expect(log.events.find((e) => e.event === 'checkpoint.committed')).toEqual({ event: 'checkpoint.committed', round: 1, adapterSha256, checkpointSha256 });

    const restart = recorder();
    const resumed = attachStore(store, restart);
    expect(sha256Named(resumed.resumeAdapter!)).toBe(adapterSha256);
    expect(restart.events.find((e) => e.event === 'federation.resumed')).toEqual({ event: 'federation.resumed', round: 1, adapterSha256, checkpointSha256 });
    store.close();
  });

  it('refuses to resume from a checkpoint whose tensors do not match the adapterSha256 it records', () => {
    const store = openMemoryStore();
    store.beginRound(1, {});
    const checkpoint = serializeSafetensors(adapter(), { metadata: { [ADAPTER_SHA256_METADATA_KEY]: '0'.repeat(64) } });
    store.commitRound(1, { checkpoint, sha256: sha256Hex(checkpoint) });
    expect(() => attachStore(store, recorder())).toThrow(expect.objectContaining({ code: 'corrupt', message: expect.stringMatching(/metadata says adapterSha256 0{64}, its tensors hash to [0-9a-f]{64}/) }));
    store.close();
  });

  it('gives back the round attempts that ended before a restart, so status keeps the history', () => {
    const store = openMemoryStore();
    const hooks = attachStore(store, recorder());
    hooks.onRoundStart(plan(1), ['a', 'b']);
    hooks.onRoundEnd({ ...summary(1, 'x'), participants: 2, participantNames: ['a', 'b'], cohort: 2 }, adapter(), plan(1));
    hooks.onRoundStart(plan(2), ['a', 'b']);
    hooks.onRoundEnd({ ...summary(2, 'y'), status: 'aborted', participants: 0, participantNames: [], reason: 'deadline: 1 of 2 clients reported' }, null, plan(2));
    hooks.onRoundStart(plan(2), ['a', 'b']); // open when the coordinator was killed

    const resumed = attachStore(store, recorder());
    expect(resumed.startAfterRound).toBe(1);
    expect(resumed.previousRounds.map((r) => [r.round, r.attempt, r.status, r.participantNames, r.cohort, r.reason, r.restored])).toEqual([
      [1, 1, 'completed', ['a', 'b'], 2, undefined, true],
      [2, 1, 'aborted', [], 2, 'deadline: 1 of 2 clients reported', true],
      [2, 2, 'aborted', [], 2, 'coordinator restarted while the round was open', true],
    ]);
    store.close();
  });

  it('commits the server optimizer state with the checkpoint and restores it on resume (FedAdam moments survive a restart)', async () => {
    const store = openMemoryStore();
    const before = createStrategy({ name: 'fedadam', serverLearningRate: 0.05 });
    const hooks = attachStore(store, recorder(), { strategy: before, recordLedger: async (s) => JSON.stringify({ kind: 'round', round: s.round }) });
    const next = before.apply(adapter(), adapter()); // round 1's step: the moments are no longer fresh
    hooks.onRoundStart(plan(1), ['a']);
    await hooks.endRound(summary(1, sha256Named(next)), next, plan(1));
    expect(store.listLedger().map((l) => l.line)).toEqual(['{"kind":"round","round":1}']);

    const after = createStrategy({ name: 'fedadam', serverLearningRate: 0.05 });
    const log = recorder();
    attachStore(store, log, { strategy: after });
    expect(log.events.find((e) => e.event === 'strategy.restored')).toEqual({ event: 'strategy.restored', round: 1, strategy: 'fedadam', step: 1 });
    const [x, y] = [before.apply(next, adapter()), after.apply(next, adapter())];
    for (const k of ['lora_A', 'lora_B']) expect(Array.from(y.get(k)!.data)).toEqual(Array.from(x.get(k)!.data));
    store.close();
  });
});
