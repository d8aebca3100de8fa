import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientPrivacyGuard } from './client-guard.js';
import { ledgerKeyFromSeed } from './ledger-format.js';
import { verifyLedgerFile } from './ledger-verify.js';
import type { RoundPrivacyParams } from './round-events.js';

const signer = { writer: 'hospital-a', secretKey: ledgerKeyFromSeed(new Uint8Array(32).fill(3)).secretKey };
const central: RoundPrivacyParams = { mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, survivors: 3 };

async function guard(epsilon: number, path = join(mkdtempSync(join(tmpdir(), 'guard-')), 'client.jsonl')): Promise<ClientPrivacyGuard> {
  return ClientPrivacyGuard.open({ ledgerPath: path, signer, budget: { epsilon, delta: 1e-5 }, unit: 'institution' });
}

describe('ClientPrivacyGuard', () => {
  it('a client with a small budget refuses the round that would exceed it, and only that one', async () => {
    const g = await guard(8);
    const decisions: boolean[] = [];
    for (let round = 0; round < 20; round++) {
      const d = g.plan(central);
      decisions.push(d.accept);
      if (!d.accept) {
        expect(d.reason).toBe('budget');
        expect(d.message).toMatch(/above this institution's budget 8/);
        expect(d.epsilonAfter).toBeGreaterThan(8);
        await g.refuse(round, d.message);
        break;
      }
      await g.record(round, central);
    }
    const accepted = decisions.filter(Boolean).length;
    expect(accepted).toBeGreaterThan(0);
    expect(decisions[decisions.length - 1]).toBe(false);
    expect(g.spent()).toBeLessThanOrEqual(8);
    const v = verifyLedgerFile(g.ledgerPath);
    expect(v.valid).toBe(true);
    expect(v.rounds.at(-1)!.kind).toBe('refused');
    expect(v.epsilon).toBeCloseTo(g.spent(), 12);
  });

  it('restores its spend from the ledger after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guard-'));
    const path = join(dir, 'client.jsonl');
    const g1 = await guard(50, path);
    await g1.record(0, central);
    await g1.record(1, central);
    const g2 = await guard(50, path);
    expect(g2.spent()).toBeCloseTo(g1.spent(), 12);
  });

  it('plans distributed noise with the fewest survivors as the worst case', async () => {
    const g = await guard(5);
    const params = (survivors: number): RoundPrivacyParams => ({
      mode: 'distributed', noise: 'skellam', clipNorm: 1, scale: 100, perClientVariance: 3000,
      l1Sensitivity: 1000, l2Sensitivity: 110, dimension: 100, samplingRate: 1, survivors, secureAggregation: true,
    });
    const few = g.plan(params(2));
    const many = g.plan(params(10));
    expect(few.epsilonAfter).toBeGreaterThan(many.epsilonAfter);
  });
});
