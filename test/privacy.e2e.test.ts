import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyLedgerFile } from '@fedlora/privacy';
import { runSimulation } from '@fedlora/cli';

describe('a federation with institution-level DP (central noise) over gRPC', () => {
  it('records every round in signed ledgers that verify, and a client refuses the round that would exceed its budget', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'fedlora-dp-e2e-'));
    const report = await runSimulation({
      clients: 3,
      rounds: 2,
      localSteps: 2,
      batchSize: 4,
      learningRate: 5e-3,
      seqLen: 32,
      charsPerClient: 12_000,
      evalSequences: 4,
      evalFraction: 0.1,
      minClients: 2,
      roundDeadlineMs: 300_000,
      strategy: { name: 'fedavg' },
      seed: 'dp-e2e',
      outDir,
      // One round at z = 1 costs about epsilon 4.9 at delta 1e-5: client-3 can afford one, not two.
      privacy: { mode: 'central', clipNorm: 0.05, noiseMultiplier: 1, delta: 1e-5, clientEpsilon: 100, clientEpsilonOverrides: { 'client-3': 6 } },
    });

    expect(report.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'completed', 3],
      [2, 'completed', 2],
    ]);
    expect(report.rounds[1]!.declined).toEqual(['client-3']);
    expect(report.rounds[1]!.epsilon!).toBeGreaterThan(report.rounds[0]!.epsilon!);
    expect(report.ledgers).toHaveLength(4);

    for (const path of report.ledgers!) expect(verifyLedgerFile(path).valid).toBe(true);
    const fed = verifyLedgerFile(report.ledgers![0]!);
    expect(fed.epsilon).toBeCloseTo(report.rounds[1]!.epsilon!, 6);
    const c3 = readFileSync(join(outDir, 'clients', 'client-3-ledger.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(c3.map((e) => e.kind)).toEqual(['round', 'refused']);
    expect(verifyLedgerFile(join(outDir, 'clients', 'client-3-ledger.jsonl')).epsilon).toBeLessThanOrEqual(6);
  });
});
