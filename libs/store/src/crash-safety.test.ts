import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from './open-store.js';
import { sha256Hex } from './round-rules.js';
import { fixtureCheckpoint } from './testing/fixture-checkpoint.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const LOOP = fileURLToPath(new URL('./testing/commit-loop.ts', import.meta.url));
const SIZE = 48 * 1024;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs the commit loop in a child and SIGKILLs it once it has reported `atLeast` commits (plus a random extra delay). */
function runAndKill(db: string, atLeast: number, extraMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', LOOP, db, String(SIZE)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let reported = -1;
    let stderr = '';
    let killing = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const m of chunk.matchAll(/committed (\d+)/g)) reported = Math.max(reported, Number(m[1]));
      if (!killing && reported + 1 >= atLeast) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), extraMs);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolve(reported);
      else reject(new Error(`commit loop exited without being killed: ${stderr}`));
    });
  });
}

describe('crash safety', () => {
  it('a child SIGKILLed mid-loop of commits leaves the latest committed round and its checkpoint intact, twice over', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedlora-crash-'));
    dirs.push(dir);
    const db = join(dir, 'coordinator.db');

    for (const [atLeast, extraMs] of [[5, 3], [3, 11]] as const) {
      const reported = await runAndKill(db, atLeast, extraMs);
      const store = openSqliteStore(db);
      const latest = store.latestCommitted()!;
      // Everything the child reported as committed is durable; it may have committed one more before dying.
      expect(latest.round).toBeGreaterThanOrEqual(reported);
      const { bytes, sha256 } = store.loadCheckpoint(latest.round);
      expect(sha256).toBe(sha256Hex(fixtureCheckpoint(latest.round, SIZE)));
      expect(sha256Hex(bytes)).toBe(sha256);
      // One ledger line per committed round, none for a round that did not commit.
      const committed = store.listRounds().filter((r) => r.state === 'committed').map((r) => r.round);
      expect(committed).toEqual([...Array(latest.round + 1).keys()]);
      expect(store.listLedger().map((e) => e.round)).toEqual(committed);
      store.close();
    }
  });
});
