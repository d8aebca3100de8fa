import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { epsilonOf } from './accountant.js';
import { accountedSampling, checkAccountedSampling, institutionSampling } from './cohort-sampling-accounting.js';
import { Ledger } from './ledger.js';
import { generateLedgerKey } from './ledger-format.js';
import { verifyLedgerFile } from './ledger-verify.js';

const poisson = { mode: 'poisson' as const, population: 1000, expectedCohort: 100, drawn: 97 };
const uniform = { mode: 'uniform' as const, population: 1000, expectedCohort: 100, drawn: 100 };

describe('accountedSampling', () => {
  it('central + Poisson accounts q = cohort / population, by the trusted coordinator', () => {
    expect(accountedSampling('central', poisson)).toEqual({ samplingRate: 0.1, sampling: { basis: 'poisson-by-trusted-coordinator', ...poisson } });
  });
  it('distributed never claims amplification: q = 1, basis distributed-not-verifiable', () => {
    expect(accountedSampling('distributed', poisson)).toMatchObject({ samplingRate: 1, sampling: { basis: 'distributed-not-verifiable' } });
    expect(accountedSampling('distributed', uniform)).toMatchObject({ samplingRate: 1, sampling: { basis: 'distributed-not-verifiable' } });
  });
  it('central + fixed-size draw claims none (the Poisson bound does not apply), full participation is q = 1', () => {
    expect(accountedSampling('central', uniform)).toMatchObject({ samplingRate: 1, sampling: { basis: 'fixed-size-not-amplified' } });
    expect(accountedSampling('central', { mode: 'all', population: 5, expectedCohort: 5, drawn: 5 })).toMatchObject({ samplingRate: 1, sampling: { basis: 'all-institutions' } });
  });
  it('sampling amplifies: the central Poisson round costs far less epsilon than q = 1', () => {
    const at = (q: number): number => epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: q, steps: 100 }], { delta: 1e-5 }).epsilon;
    expect(at(accountedSampling('central', poisson).samplingRate)).toBeLessThan(at(1) / 5);
  });
});

describe('institutionSampling (what an institution records of its plan\'s draw)', () => {
  it('never takes amplification: where the federation may claim q < 1 it records not-verifiable-by-institution at q = 1', () => {
    expect(institutionSampling('central', poisson)).toEqual({ samplingRate: 1, sampling: { basis: 'not-verifiable-by-institution', ...poisson } });
    expect(checkAccountedSampling('central', 1, institutionSampling('central', poisson).sampling)).toBeUndefined();
    expect(checkAccountedSampling('central', 0.1, institutionSampling('central', poisson).sampling)).toMatch(/accounts q = 1, but the entry accounts 0.1/);
  });
  it('keeps the federation\'s basis when that already accounts q = 1, and the audit rejects the institution basis there', () => {
    expect(institutionSampling('distributed', poisson).sampling.basis).toBe('distributed-not-verifiable');
    expect(institutionSampling('central', uniform).sampling.basis).toBe('fixed-size-not-amplified');
    expect(checkAccountedSampling('distributed', 1, { ...poisson, basis: 'not-verifiable-by-institution' })).toMatch(/claims no amplification \(expected distributed-not-verifiable\)/);
  });
});

describe('fedlora audit recomputes the sampling rate', () => {
  const key = generateLedgerKey();
  async function ledgerWith(params: Record<string, unknown>): Promise<string> {
    const path = join(mkdtempSync(join(tmpdir(), 'sampling-ledger-')), 'ledger.jsonl');
    const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, { delta: 1e-5 });
    await ledger.append({ kind: 'round', round: 0, unit: 'institution', params: params as never });
    return path;
  }
  const skellam = { mode: 'distributed', noise: 'skellam', clipNorm: 1, scale: 100, perClientVariance: 4000, l1Sensitivity: 1100, l2Sensitivity: 110, dimension: 100, survivors: 90, secureAggregation: true };

  it('accepts a central Poisson round at q = 0.1 and a distributed one at q = 1', async () => {
    const c = verifyLedgerFile(await ledgerWith({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, survivors: 97, ...accountedSampling('central', poisson) }));
    expect(c.problems.map((p) => p.message)).toEqual([]);
    const d = verifyLedgerFile(await ledgerWith({ ...skellam, ...accountedSampling('distributed', poisson) }));
    expect(d.problems.map((p) => p.message)).toEqual([]);
  });

  it('flags a distributed round that claims amplification by sampling', async () => {
    const v = verifyLedgerFile(await ledgerWith({ ...skellam, samplingRate: 0.1, sampling: { basis: 'poisson-by-trusted-coordinator', ...poisson } }));
    expect(v.problems.map((p) => p.message).join('\n')).toMatch(/mis-accounted: sampling basis poisson-by-trusted-coordinator does not follow from a distributed-mode poisson draw/);
  });

  it('flags a central round whose q does not match its recorded draw', async () => {
    const v = verifyLedgerFile(await ledgerWith({ mode: 'central', clipNorm: 1, noiseMultiplier: 1, survivors: 97, samplingRate: 0.01, sampling: { basis: 'poisson-by-trusted-coordinator', ...poisson } }));
    expect(v.problems.map((p) => p.message).join('\n')).toMatch(/accounts sampling rate 0.01 but .* allows 0.1/);
    expect(checkAccountedSampling('central', 0.01, { basis: 'poisson-by-trusted-coordinator', ...poisson })).toMatch(/allows 0.1/);
  });
});
