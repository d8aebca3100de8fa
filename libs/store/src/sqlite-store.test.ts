import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openMemoryStore, openSqliteStore } from './open-store.js';
import { sha256Hex } from './round-rules.js';
import { StoreError } from './store-error.js';
import type { FederationStore } from './types.js';

const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function clock(start = 1_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const implementations: Array<[string, (now: () => number) => FederationStore]> = [
  ['sqlite file', (now) => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlora-store-'));
    dirs.push(dir);
    return openSqliteStore(join(dir, 'coordinator.db'), { now });
  }],
  ['memory', (now) => openMemoryStore({ now })],
];

function commit(store: FederationStore, round: number, text = `adapter ${round}`): string {
  const checkpoint = new TextEncoder().encode(text);
  const sha256 = sha256Hex(checkpoint);
  store.commitRound(round, { checkpoint, sha256, ledgerLine: JSON.stringify({ round }) });
  return sha256;
}

describe.each(implementations)('FederationStore (%s)', (_name, open) => {
  it('saves and replaces the federation record', () => {
    const c = clock();
    const store = open(c.now);
    expect(store.getFederation()).toBeUndefined();
    store.saveFederation({ id: 'fed-1', config: { rounds: { total: 3 } }, state: 'created' });
    c.advance(5);
    const fed = store.saveFederation({ id: 'fed-1', config: { rounds: { total: 3 } }, state: 'running' });
    expect(fed).toEqual({ id: 'fed-1', config: { rounds: { total: 3 } }, state: 'running', createdAt: 1000, updatedAt: 1005 });
  });

  it('enrols, lists and revokes clients; a revoked client stays revoked on re-enrolment', () => {
    const store = open(clock().now);
    store.upsertClient({ name: 'hospital-b', publicKey: KEY_B });
    store.upsertClient({ name: 'hospital-a', publicKey: KEY_A });
    expect(store.listClients().map((c) => c.name)).toEqual(['hospital-a', 'hospital-b']);
    const revoked = store.revokeClient('hospital-a', 'key leaked');
    expect(revoked).toMatchObject({ status: 'revoked', revokedReason: 'key leaked' });
    expect(store.upsertClient({ name: 'hospital-a', publicKey: KEY_B }).status).toBe('revoked');
    expect(store.upsertClient({ name: 'hospital-a', publicKey: KEY_B, reinstate: true })).toMatchObject({ status: 'enrolled', publicKey: KEY_B });
  });

  it('rejects a malformed public key and revoking an unknown client', () => {
    const store = open(clock().now);
    expect(() => store.upsertClient({ name: 'x', publicKey: 'abc' })).toThrow(/publicKey: expected 32 bytes/);
    expect(() => store.revokeClient('nobody')).toThrow(StoreError);
  });

  it('walks a round through its states and commits checkpoint, state and ledger together', () => {
    const c = clock();
    const store = open(c.now);
    store.beginRound(0, { cohort: ['a', 'b'] }, ['a', 'b']);
    store.setRoundState(0, 'training');
    store.setRoundState(0, 'aggregating');
    c.advance(10);
    const sha = commit(store, 0);
    expect(store.getRound(0)).toMatchObject({ state: 'committed', attempt: 1, plan: { cohort: ['a', 'b'] }, committedAt: 1010 });
    expect(store.latestCommitted()).toMatchObject({ round: 0, sha256: sha, bytes: 9 });
    expect(new TextDecoder().decode(store.loadCheckpoint(0).bytes)).toBe('adapter 0');
    expect(store.listLedger().map((e) => [e.seq, e.round, e.line])).toEqual([[1, 0, '{"round":0}']]);
  });

  it('refuses a checkpoint whose hash does not match, leaving the round open', () => {
    const store = open(clock().now);
    store.beginRound(0, {});
    const checkpoint = new Uint8Array([1, 2, 3]);
    expect(() => store.commitRound(0, { checkpoint, sha256: sha256Hex(new Uint8Array([9])) })).toThrow(/sha256 mismatch/);
    expect(store.getRound(0)!.state).toBe('planned');
    expect(store.latestCommitted()).toBeUndefined();
  });

  it('refuses backwards transitions, double commits and beginning an open round', () => {
    const store = open(clock().now);
    store.beginRound(0, {});
    store.setRoundState(0, 'aggregating');
    expect(() => store.setRoundState(0, 'training')).toThrow(/cannot move back from "aggregating" to "training"/);
    expect(() => store.beginRound(0, {})).toThrow(/still "aggregating"/);
    commit(store, 0);
    expect(() => commit(store, 0)).toThrow(/already "committed"/);
    expect(() => store.beginRound(0, {})).toThrow(/already committed/);
  });

  it('aborts incomplete rounds at start-up and reruns them as a new attempt', () => {
    const store = open(clock().now);
    store.beginRound(0, {});
    commit(store, 0);
    store.beginRound(1, { keys: 'old' });
    store.setRoundState(1, 'aggregating');
    const aborted = store.abortIncompleteRounds('coordinator restarted mid-secure-aggregation');
    expect(aborted).toEqual([expect.objectContaining({ round: 1, attempt: 1, state: 'aborted', reason: 'coordinator restarted mid-secure-aggregation' })]);
    const rerun = store.beginRound(1, { keys: 'fresh' });
    expect(rerun).toMatchObject({ round: 1, attempt: 2, state: 'planned', plan: { keys: 'fresh' } });
    commit(store, 1);
    expect(store.listRounds().map((r) => `${r.round}.${r.attempt}:${r.state}`)).toEqual(['0.1:committed', '1.1:aborted', '1.2:committed']);
    expect(store.latestCommitted()).toMatchObject({ round: 1, attempt: 2 });
  });

  it('keeps the ledger append-only and ordered, with lines outside commits', () => {
    const store = open(clock().now);
    expect(store.appendLedger('{"kind":"genesis"}')).toBe(1);
    store.beginRound(0, {});
    commit(store, 0);
    expect(store.appendLedger('{"kind":"note"}', 0)).toBe(3);
    expect(store.listLedger(1).map((e) => e.seq)).toEqual([2, 3]);
    expect(() => store.appendLedger('not json')).toThrow(/ledgerLine: expected JSON/);
    expect(() => store.appendLedger('{"a":1}\n{"b":2}')).toThrow(/single line/);
  });

  it('records audit events and filters them', () => {
    const store = open(clock().now);
    store.appendAudit({ event: 'auth.refused', client: 'mallory', detail: { reason: 'replay' } });
    store.appendAudit({ event: 'client.revoked', client: 'hospital-a' });
    store.appendAudit({ event: 'auth.refused', client: 'eve' });
    expect(store.listAudit({ event: 'auth.refused' }).map((a) => a.client)).toEqual(['mallory', 'eve']);
    expect(store.listAudit({ limit: 1 })).toEqual([{ id: 3, event: 'auth.refused', client: 'eve', at: 1000 }]);
    expect(store.listAudit({ client: 'mallory' })[0]!.detail).toEqual({ reason: 'replay' });
  });

  it('detects replayed nonces until they expire', () => {
    const c = clock();
    const store = open(c.now);
    expect(store.recordNonce('n1', 1_100)).toBe(true);
    expect(store.recordNonce('n1', 1_100)).toBe(false);
    c.advance(100);
    expect(store.recordNonce('n1', 1_300)).toBe(true);
  });

  it('prunes old checkpoint bytes but never the latest or the kept ones; rounds and ledger stay', () => {
    const store = open(clock().now);
    for (let r = 0; r < 5; r++) {
      store.beginRound(r, {});
      commit(store, r);
    }
    expect(store.pruneCheckpoints(2, [1])).toEqual([0, 2]);
    expect(store.listCheckpoints().map((c) => c.round)).toEqual([1, 3, 4]);
    expect(() => store.loadCheckpoint(0)).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(store.latestCommitted()!.round).toBe(4);
    expect(store.listLedger()).toHaveLength(5);
    expect(store.listRounds().every((r) => r.state === 'committed')).toBe(true);
    expect(() => store.pruneCheckpoints(0)).toThrow(/keepLast: expected an integer >= 1, received 0/);
  });

  it('summarises the federation for status reports', () => {
    const store = open(clock().now);
    store.saveFederation({ id: 'fed', config: {}, state: 'running' });
    store.upsertClient({ name: 'a', publicKey: KEY_A });
    store.upsertClient({ name: 'b', publicKey: KEY_B });
    store.revokeClient('b');
    store.beginRound(0, {});
    commit(store, 0);
    store.beginRound(1, {});
    store.appendAudit({ event: 'x' });
    expect(store.summary()).toEqual({
      federation: { id: 'fed', state: 'running' },
      clients: { enrolled: 1, revoked: 1 },
      rounds: { planned: 1, training: 0, aggregating: 0, committed: 1, aborted: 0 },
      latestCommitted: 0,
      checkpoints: { count: 1, bytes: 9 },
      ledgerEntries: 1,
      auditEvents: 1,
    });
  });

  it('throws StoreError("closed") after close', () => {
    const store = open(clock().now);
    store.close();
    expect(() => store.listClients()).toThrow(expect.objectContaining({ code: 'closed' }));
  });
});
