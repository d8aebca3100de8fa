import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { epsilonOf } from './accountant.js';
import { ClientPrivacyGuard } from './client-guard.js';
import { dpRoundParams, integerSensitivities, perClientNoiseVariance, validateDpConfig, type DpFedAvgConfig } from './dp-fedavg.js';
import { Ledger } from './ledger.js';
import { ledgerKeyFromSeed } from './ledger-format.js';
import { verifyLedgerFile } from './ledger-verify.js';
import { distributedNoiseShare } from './noise.js';
import { roundEvents } from './round-events.js';

const cfg: DpFedAvgConfig = { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1.2, noise: 'skellam', scale: 64, minSurvivors: 3, secureAggregation: true };

describe('DP-FedAvg configuration', () => {
  it('refuses distributed noise without secure aggregation unless forced', () => {
    expect(() => validateDpConfig({ ...cfg, secureAggregation: false })).toThrow(/requires secure aggregation/);
    expect(() => validateDpConfig({ ...cfg, secureAggregation: false, force: true })).not.toThrow();
  });

  it('plans per-client variance so the minimum survivors reach z*C*scale', () => {
    expect(perClientNoiseVariance(cfg) * 3).toBeCloseTo((1.2 * 64) ** 2, 9);
    expect(integerSensitivities(1, 64, 100)).toEqual({ l2: 74, l1: 74 * 10 });
  });
});

describe('a distributed-DP federation, end to end in process', () => {
  it('clips, adds Skellam shares, sums the survivors, enforces budgets and writes ledgers that verify', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dpfl-'));
    const dimension = 64;
    const delta = 1e-5;
    const coordinator = await Ledger.open(join(dir, 'federation.jsonl'), { writer: 'coordinator', role: 'coordinator', secretKey: ledgerKeyFromSeed(new Uint8Array(32).fill(100)).secretKey }, { delta });
    const budgets = [1e4, 1e4, 1e4, 1e4, 8];
    const guards = await Promise.all(
      budgets.map((epsilon, c) =>
        ClientPrivacyGuard.open({
          ledgerPath: join(dir, `client-${c}.jsonl`),
          signer: { writer: `client-${c}`, secretKey: ledgerKeyFromSeed(new Uint8Array(32).fill(c + 1)).secretKey },
          budget: { epsilon, delta },
          unit: 'institution',
        }),
      ),
    );
    const refusedAt: number[] = [];
    const rng = seededRandomBytes('fl');
    for (let round = 0; round < 4; round++) {
      const planned = dpRoundParams(cfg, { survivors: cfg.minSurvivors!, dimension });
      const accepted: Array<{ g: ClientPrivacyGuard; c: number }> = [];
      for (const [c, g] of guards.entries()) {
        const d = g.plan(planned);
        if (d.accept) accepted.push({ g, c });
        else {
          refusedAt[c] = round;
          await g.refuse(round, d.message);
        }
      }
      // Round 2: one accepted client drops before its masked upload.
      const survivors = round === 2 ? accepted.slice(1) : accepted;
      const sum = new Float64Array(dimension);
      for (const { c } of survivors) {
        const update = Float64Array.from({ length: dimension }, () => (uniform01(rng) - 0.5) * 0.5 + c * 0.01);
        const norm = Math.hypot(...update);
        const s = Math.min(1, cfg.clipNorm / norm);
        const share = distributedNoiseShare({ noise: 'skellam', perClientVariance: planned.mode === 'distributed' ? planned.perClientVariance : 0, length: dimension, rng });
        for (let i = 0; i < dimension; i++) sum[i] = sum[i]! + Math.round(update[i]! * s * cfg.scale!) + share[i]!;
      }
      const actual = dpRoundParams(cfg, { survivors: survivors.length, dimension });
      await coordinator.append({ kind: 'round', round, unit: 'institution', params: actual });
      for (const { g, c } of accepted) {
        if (survivors.some((s) => s.c === c)) await g.record(round, actual);
        else await g.aborted(round, 'dropped before upload: nothing released');
      }
      expect(sum.every(Number.isInteger)).toBe(true);
    }
    // The small-budget client refused a round and never overspent.
    expect(refusedAt[4]).toBeGreaterThan(0);
    expect(guards[4]!.spent()).toBeLessThanOrEqual(8);
    // Every ledger verifies; the federation's epsilon is the accountant's for the survivors actually summed.
    const fed = verifyLedgerFile(join(dir, 'federation.jsonl'));
    expect(fed.problems).toEqual([]);
    const events = fed.parsed.flatMap((e) => (e.params ? roundEvents(e.params) : []));
    expect(fed.epsilon).toBeCloseTo(epsilonOf(events, { delta }).epsilon, 10);
    expect(fed.parsed[2]!.events[0]).toMatchObject({ mechanism: 'skellam' });
    expect((fed.parsed[2]!.params as { survivors: number }).survivors).toBeLessThan((fed.parsed[1]!.params as { survivors: number }).survivors);
    for (let c = 0; c < budgets.length; c++) expect(verifyLedgerFile(join(dir, `client-${c}.jsonl`)).valid).toBe(true);
  });
});
