import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));

function fedlora(args: string[], stdin = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { input: stdin, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('fedlora privacy (spawned CLI)', () => {
  it('epsilon reads the issue spec on stdin and prints one JSON document with the Opacus value', () => {
    const spec = { events: [{ mechanism: 'sampled_gaussian', noiseMultiplier: 1.5, samplingRate: 0.04, steps: 2250 }], delta: 1e-5, orders: 'opacus', conversion: 'improved' };
    const r = fedlora(['privacy', 'epsilon', '--json'], JSON.stringify(spec));
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { epsilon: number; order: number };
    expect(Object.keys(out).sort()).toEqual(['epsilon', 'order']);
    expect(out.epsilon).toBeCloseTo(7.32911117143, 7); // opacus/tests/accountants_test.py::test_rdp_accountant
  });

  it('rejects a bad spec with a message naming the field and a non-zero exit', () => {
    const r = fedlora(['privacy', 'epsilon', '--json'], JSON.stringify({ events: [{ mechanism: 'gaussian', noiseMultiplier: -1, steps: 1 }], delta: 1e-5 }));
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/events\[0\]\.noiseMultiplier must be >= 0/);
  });
});

describe('fedlora privacy (in process, flags)', () => {
  async function run(args: string[]): Promise<unknown> {
    const { buildProgram } = await import('../main.js');
    const program = await buildProgram();
    program.exitOverride();
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    try {
      await program.parseAsync(['node', 'fedlora', ...args]);
    } finally {
      spy.mockRestore();
    }
    return JSON.parse(out);
  }

  it('noise calibrates the smallest z and delta inverts epsilon for the same event', async () => {
    const noise = (await run(['privacy', 'noise', '--json', '--target-epsilon', '8', '--delta', '1e-5', '--sampling-rate', '0.04', '--steps', '2250', '--orders', 'opacus'])) as { noiseMultiplier: number };
    expect(noise.noiseMultiplier).toBeGreaterThan(1.4);
    expect(noise.noiseMultiplier).toBeLessThanOrEqual(1.425307617);
    const d = (await run(['privacy', 'delta', '--json', '--noise-multiplier', '1.5', '--sampling-rate', '0.04', '--steps', '2250', '--orders', 'opacus', '--epsilon', '7.329111171437374'])) as { delta: number };
    expect(d.delta).toBeCloseTo(1e-5, 9);
    const r = (await run(['privacy', 'rdp', '--json', '--noise-multiplier', '2', '--steps', '3', '--orders', '2,4'])) as { orders: number[]; rdp: number[] };
    expect(r).toEqual({ orders: [2, 4], rdp: [0.75, 1.5] });
  });
});
