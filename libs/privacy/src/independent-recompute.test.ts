import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Ledger } from './ledger.js';
import { ledgerKeyFromSeed } from './ledger-format.js';
import { verifyLedgerFile } from './ledger-verify.js';

const python = '/usr/bin/python3';
const script = fileURLToPath(new URL('../tools/recompute_epsilon.py', import.meta.url));
const hasMpmath = existsSync(python) && spawnSync(python, ['-c', 'import mpmath'], { encoding: 'utf8' }).status === 0;

describe('independent re-computation (tools/recompute_epsilon.py, mpmath at 50 digits)', () => {
  it.skipIf(!hasMpmath)('agrees with the TypeScript accountant on a ledger mixing every mechanism', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'indep-')), 'ledger.jsonl');
    const key = ledgerKeyFromSeed(new Uint8Array(32).fill(42));
    const ledger = await Ledger.open(path, { writer: 'coordinator', role: 'coordinator', secretKey: key.secretKey }, { delta: 1e-6, orders: [1.5, 1.75, 2, 2.5, 3, 4, 5.5, 8, 12, 16, 24, 32, 64] });
    await ledger.append({ kind: 'round', round: 0, unit: 'institution', params: { mode: 'central', clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.3, survivors: 5 } });
    await ledger.append({
      kind: 'round', round: 1, unit: 'institution',
      params: { mode: 'distributed', noise: 'skellam', clipNorm: 1, scale: 100, perClientVariance: 4000, l1Sensitivity: 1100, l2Sensitivity: 110, dimension: 100, samplingRate: 0.5, survivors: 4, secureAggregation: true },
    });
    await ledger.append({
      kind: 'round', round: 2, unit: 'institution',
      params: { mode: 'distributed', noise: 'discrete_gaussian', clipNorm: 1, scale: 100, perClientVariance: 2500, l1Sensitivity: 1100, l2Sensitivity: 110, dimension: 100, samplingRate: 1, survivors: 3, secureAggregation: true },
    });
    await ledger.append({ kind: 'aborted', round: 3, unit: 'institution', note: 'too few survivors' });
    await ledger.append({ kind: 'round', round: 4, unit: 'institution', events: [{ mechanism: 'gaussian', noiseMultiplier: 3, steps: 2 }] });
    const ts = verifyLedgerFile(path);
    expect(ts.valid).toBe(true);
    const r = spawnSync(python, [script, path], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    const py = JSON.parse(r.stdout) as { entries: number; perEntry: number[] };
    expect(py.entries).toBe(5);
    ts.rounds.forEach((round, i) => expect(Math.abs(py.perEntry[i]! / round.epsilon - 1)).toBeLessThan(1e-8));
  });
});
