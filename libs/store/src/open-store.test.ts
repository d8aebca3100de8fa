import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './open-store.js';
import { sha256Hex } from './round-rules.js';
import { StoreError } from './store-error.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const OPEN_CLI = fileURLToPath(new URL('./testing/open-store-cli.ts', import.meta.url));
const KEY = Buffer.alloc(32, 7).toString('base64');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-open-'));
  dirs.push(dir);
  return dir;
}

function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error('expected a StoreError');
}

describe('openSqliteStore', () => {
  it('reopening resumes: federation, clients, rounds, checkpoints and ledger survive a close', () => {
    const path = join(tempDir(), 'coordinator.db');
    const first = openSqliteStore(path);
    first.saveFederation({ id: 'fed', config: { a: 1 }, state: 'running' });
    first.upsertClient({ name: 'inst-1', publicKey: KEY });
    first.beginRound(0, { n: 1 });
    const checkpoint = new Uint8Array(100_000).fill(3);
    first.commitRound(0, { checkpoint, sha256: sha256Hex(checkpoint), ledgerLine: '{"round":0}' });
    first.beginRound(1, {});
    first.setRoundState(1, 'training');
    first.close();

    const second = openSqliteStore(path);
    expect(second.getFederation()).toMatchObject({ id: 'fed', state: 'running' });
    expect(second.listClients()).toHaveLength(1);
    expect(second.latestCommitted()).toMatchObject({ round: 0, sha256: sha256Hex(checkpoint) });
    expect(second.abortIncompleteRounds('restart').map((r) => r.round)).toEqual([1]);
    expect(second.loadCheckpoint(0).bytes).toEqual(checkpoint);
    expect(second.listLedger()).toHaveLength(1);
    second.close();
  });

  it('uses WAL journaling and incremental auto-vacuum', () => {
    const dir = tempDir();
    openSqliteStore(join(dir, 'c.db')).close();
    const probe = spawnSync(process.execPath, ['-e', `const D=require('better-sqlite3');const d=new D(${JSON.stringify(join(dir, 'c.db'))});process.stdout.write(d.pragma('journal_mode',{simple:true})+' '+d.pragma('auto_vacuum',{simple:true}))`], { cwd: REPO, encoding: 'utf8' });
    expect(probe.stdout.trim()).toBe('wal 2'); // 2 = INCREMENTAL
  });

  it('keeps synchronous=FULL for round commits after a relaxed nonce write', () => {
    const store = openSqliteStore(join(tempDir(), 'c.db'));
    expect(store.recordNonce('n', Date.now() + 1000)).toBe(true);
    const db = (store as unknown as { db: { pragma(s: string, o: { simple: boolean }): unknown } }).db;
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // 2 = FULL
    store.close();
  });

  it('names a missing data directory and says what to do', () => {
    const err = storeError(() => openSqliteStore(join(tempDir(), 'no', 'such', 'c.db')));
    expect(err.code).toBe('missing-dir');
    expect(err.message).toMatch(/does not exist; create it/);
  });

  it('refuses a file that is not a SQLite database', () => {
    const path = join(tempDir(), 'c.db');
    writeFileSync(path, Buffer.alloc(8192, 0x41));
    const err = storeError(() => openSqliteStore(path));
    expect(err.code).toBe('corrupt');
    expect(err.message).toMatch(/not a SQLite database.*restore it from a backup/);
  });

  it('reports a full disk as disk-full and rolls the commit back whole', () => {
    const store = openSqliteStore(join(tempDir(), 'c.db'), { maxBytes: 256 * 1024 });
    store.beginRound(0, {});
    const big = new Uint8Array(1024 * 1024).fill(1);
    const err = storeError(() => store.commitRound(0, { checkpoint: big, sha256: sha256Hex(big), ledgerLine: '{"round":0}' }));
    expect(err.code).toBe('disk-full');
    expect(err.message).toMatch(/nothing was half-written/);
    expect(store.getRound(0)!.state).toBe('planned');
    expect(store.listLedger()).toEqual([]);
    expect(store.latestCommitted()).toBeUndefined();
    const small = new Uint8Array(10);
    store.commitRound(0, { checkpoint: small, sha256: sha256Hex(small) });
    expect(store.latestCommitted()!.round).toBe(0);
    store.close();
  });

  // Root ignores directory permissions, so the check runs as uid 65534, which must be able to read
  // the checkout (node_modules, tsx). A checkout inside a private directory (e.g. `mktemp -d`, mode
  // 0700) is unreachable for that user: the test is skipped there, for that reason only.
  const asRootUnreachable =
    process.getuid?.() === 0 && spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(join(REPO, 'node_modules'))})`], { uid: 65534, gid: 65534 }).status !== 0;
  it.skipIf(asRootUnreachable)('refuses a read-only data directory with a clear error (checked as an unprivileged user)', () => {
    const dir = tempDir();
    const data = join(dir, 'data');
    mkdirSync(data);
    chmodSync(dir, 0o755);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) chownSync(data, 65534, 65534);
    chmodSync(data, 0o555);
    const child = spawnSync(process.execPath, ['--import', 'tsx', OPEN_CLI, join(data, 'c.db')], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, HOME: dir },
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    const result = JSON.parse(child.stdout) as { ok: boolean; code?: string; message?: string };
    expect(result).toMatchObject({ ok: false, code: 'read-only' });
    expect(result.message).toMatch(/not writable by this user/);
  });
});
