import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../apps/cli/bin/fedlora.mjs', import.meta.url));

describe('fedlora CLI', () => {
  it('simulate --json prints exactly one JSON document with the promised fields', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'simulate', '--clients', '3', '--rounds', '2', '--local-steps', '3', '--seq-len', '32', '--chars-per-client', '12000', '--json'], {
      maxBuffer: 16 << 20,
    });
    const doc = JSON.parse(stdout);
    expect(typeof doc.backend).toBe('string');
    expect(doc.rounds).toHaveLength(2);
    for (const [i, r] of doc.rounds.entries()) {
      expect(r.round).toBe(i + 1);
      expect(r.participants).toBe(3);
      expect(Number.isFinite(r.trainLoss)).toBe(true);
      expect(Number.isFinite(r.evalLoss)).toBe(true);
    }
  });

  it('every subcommand answers --help', async () => {
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    const commands = [...stdout.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands).toContain('simulate');
    for (const c of commands) {
      const h = await run(process.execPath, [BIN, c, '--help']);
      expect(h.stdout).toMatch(/Usage: fedlora/);
    }
  }, 600_000); // one process per subcommand: seconds each on a loaded machine

  it('rejects a bad flag value with a message naming the flag and a non-zero exit', async () => {
    const err = await run(process.execPath, [BIN, 'simulate', '--clients', 'two']).catch((e) => e);
    expect(err.code).not.toBe(0);
    expect(err.stderr).toMatch(/--clients expects an integer/);
  });
});
