import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const addonPath = fileURLToPath(new URL('../build/Release/fedlora_native.node', import.meta.url));
const built = existsSync(addonPath);
if (!built) console.warn(`C-loop fallback test skipped: the addon is not built (${addonPath})`);

/**
 * Loads the addon in a child process with FEDLORA_BLAS_LIB=none (BLAS is chosen once per process)
 * and checks the portable C matrix product against a float64 reference for every transpose pair.
 */
const SCRIPT = `
const addon = require(process.argv[1]);
const [m, n, k] = [5, 7, 9];
let worst = 0;
for (const ta of [false, true]) for (const tb of [false, true]) {
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i + 1));
  const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7));
  const out = new Float32Array(2 * m * n);
  addon.matmul(a, b, out, [2], [0], [0], m, n, k, ta, tb);
  for (let bi = 0; bi < 2; bi++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
    worst = Math.max(worst, Math.abs(out[bi * m * n + i * n + j] - s));
  }
}
console.log(JSON.stringify({ blas: addon.info().blas, worst }));
`;

describe.skipIf(!built)('portable C matrix product (no BLAS present)', () => {
  it('is used when no BLAS loads, and matches a float64 reference for all transpose flags', () => {
    const r = spawnSync(process.execPath, ['-e', SCRIPT, addonPath], {
      env: { ...process.env, FEDLORA_BLAS_LIB: 'none' },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const { blas, worst } = JSON.parse(r.stdout) as { blas: string; worst: number };
    expect(blas).toBe('');
    expect(worst).toBeLessThan(1e-5);
  });
});
