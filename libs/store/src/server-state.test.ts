import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './open-store.js';
import { sha256Hex } from './round-rules.js';
import { MIGRATIONS } from './schema.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dbFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-store-'));
  dirs.push(dir);
  return join(dir, 'coordinator.db');
}
const bytes = (s: string) => new TextEncoder().encode(s);

describe('the server optimizer state committed with a checkpoint', () => {
  it('is committed in the same transaction as the checkpoint and read back verified after reopening', () => {
    const file = dbFile();
    const store = openSqliteStore(file);
    store.beginRound(1, {});
    const checkpoint = bytes('adapter 1');
    store.commitRound(1, { checkpoint, sha256: sha256Hex(checkpoint), serverState: bytes('moments after round 1') });
    store.close();
    const reopened = openSqliteStore(file);
    expect(new TextDecoder().decode(reopened.loadCheckpoint(1).serverState)).toBe('moments after round 1');
    reopened.close();
  });

  it('is absent for a checkpoint committed without one', () => {
    const store = openSqliteStore(dbFile());
    store.beginRound(1, {});
    store.commitRound(1, { checkpoint: bytes('a'), sha256: sha256Hex(bytes('a')) });
    expect(store.loadCheckpoint(1).serverState).toBeUndefined();
    store.close();
  });

  it('is not written when the commit fails (a bad checkpoint hash rolls everything back)', () => {
    const store = openSqliteStore(dbFile());
    store.beginRound(1, {});
    expect(() => store.commitRound(1, { checkpoint: bytes('a'), sha256: '0'.repeat(64), serverState: bytes('s') })).toThrow();
    expect(store.listCheckpoints()).toEqual([]);
    store.close();
  });

  it('refuses state damaged outside fedlora', () => {
    const file = dbFile();
    const store = openSqliteStore(file);
    store.beginRound(1, {});
    store.commitRound(1, { checkpoint: bytes('a'), sha256: sha256Hex(bytes('a')), serverState: bytes('state') });
    store.close();
    const raw = new Database(file);
    raw.prepare('UPDATE checkpoints SET server_state = ? WHERE round = 1').run(Buffer.from('stale'));
    raw.close();
    const reopened = openSqliteStore(file);
    expect(() => reopened.loadCheckpoint(1)).toThrow(expect.objectContaining({ code: 'corrupt', message: expect.stringMatching(/server optimizer state of round 1 fails its SHA-256 check/) }));
    reopened.close();
  });

  it('upgrades a version-1 database in place: its checkpoints load without state, new ones carry it', () => {
    const file = dbFile();
    const v1 = new Database(file);
    v1.exec(MIGRATIONS[0]!);
    v1.pragma('user_version = 1');
    v1.prepare("INSERT INTO rounds (round, attempt, state, plan, participants, started_at, updated_at) VALUES (1, 1, 'committed', '{}', '[]', 0, 0)").run();
    v1.prepare('INSERT INTO checkpoints (round, attempt, sha256, size, bytes, created_at) VALUES (1, 1, ?, 1, ?, 0)').run(sha256Hex(bytes('a')), Buffer.from('a'));
    v1.close();
    const store = openSqliteStore(file);
    expect(store.loadCheckpoint(1).serverState).toBeUndefined();
    store.beginRound(2, {});
    store.commitRound(2, { checkpoint: bytes('b'), sha256: sha256Hex(bytes('b')), serverState: bytes('s') });
    expect(new TextDecoder().decode(store.loadCheckpoint(2).serverState)).toBe('s');
    store.close();
  });
});
