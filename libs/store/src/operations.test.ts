import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './open-store.js';
import { sha256Hex } from './round-rules.js';

// Operator scenarios on a real database file: several connections, restarts, damage from outside.
const KEY = Buffer.alloc(32, 3).toString('base64');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-ops-'));
  dirs.push(d);
  return join(d, 'coordinator.db');
}

describe('store operations', () => {
  it('a revocation written by another process is seen by the running coordinator without a restart', () => {
    const path = dbPath();
    const coordinator = openSqliteStore(path);
    coordinator.upsertClient({ name: 'inst-1', publicKey: KEY });
    expect(coordinator.getClient('inst-1')!.status).toBe('enrolled');
    const operator = openSqliteStore(path); // e.g. an admin command on the same data directory
    operator.revokeClient('inst-1', 'laptop stolen');
    operator.close();
    expect(coordinator.getClient('inst-1')).toMatchObject({ status: 'revoked', revokedReason: 'laptop stolen' });
    coordinator.close();
  });

  it('refuses a replayed nonce after the coordinator restarts', () => {
    const path = dbPath();
    const before = openSqliteStore(path, { now: () => 1_000 });
    expect(before.recordNonce('inst-1:abcd', 10_000)).toBe(true);
    before.close();
    const after = openSqliteStore(path, { now: () => 2_000 });
    expect(after.recordNonce('inst-1:abcd', 10_000)).toBe(false);
    after.close();
  });

  it('detects a checkpoint altered outside fedlora', () => {
    const path = dbPath();
    const store = openSqliteStore(path);
    store.beginRound(0, {});
    const checkpoint = new Uint8Array(64).fill(1);
    store.commitRound(0, { checkpoint, sha256: sha256Hex(checkpoint) });
    store.close();
    const raw = new Database(path);
    raw.prepare('UPDATE checkpoints SET bytes = ? WHERE round = 0').run(Buffer.alloc(64, 2));
    raw.close();
    const reopened = openSqliteStore(path);
    expect(() => reopened.loadCheckpoint(0)).toThrow(expect.objectContaining({ code: 'corrupt', message: expect.stringMatching(/sha256 mismatch/) }));
    reopened.close();
  });

  it('refuses to edit or delete ledger lines even through raw SQL', () => {
    const path = dbPath();
    const store = openSqliteStore(path);
    store.appendLedger('{"round":0}');
    store.close();
    const raw = new Database(path);
    expect(() => raw.prepare("UPDATE ledger SET line = '{}'").run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM ledger').run()).toThrow(/append-only/);
    raw.close();
  });
});
