/**
 * Vitest global setup: every test run gets its own temporary directory (TMPDIR, which
 * `os.tmpdir()` and the processes the tests spawn both honour), removed when the run ends, so
 * test ledgers, keys and checkpoints do not pile up in /tmp. Mode 1777 like /tmp itself, so the
 * store's "read-only for another uid" test can still reach its files
 * and write its tsx cache there.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const previous = process.env['TMPDIR'];
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-test-'));
  chmodSync(dir, 0o1777);
  process.env['TMPDIR'] = dir;
  return () => {
    if (previous === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = previous;
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}
