import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyLedgerFile } from '@fedlora/privacy';
import { runSimulation } from '@fedlora/cli';
import type { LocalTrainer } from '@fedlora/federation';

/** Two institutions, two short rounds on small slices of text: the simulation options these tests share. */
function tinyDpRun(outDir: string, seed: string) {
  return {
    clients: 2,
    rounds: 2,
    localSteps: 2,
    batchSize: 4,
    learningRate: 5e-3,
    seqLen: 32,
    charsPerClient: 6_000,
    evalSequences: 2,
    evalFraction: 0.1,
    roundDeadlineMs: 300_000,
    strategy: { name: 'fedavg' as const },
    seed,
    outDir,
  };
}

describe('a federation whose clients train with record-level DP-SGD, over gRPC', () => {
  it('keeps one signed record-level ledger per client that verifies and matches the per-round recordEpsilon', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'fedlora-dpsgd-e2e-'));
    const report = await runSimulation({
      ...tinyDpRun(outDir, 'dp-sgd-e2e'),
      dpSgd: { clipNorm: 1, noiseMultiplier: 1, epsilon: 50, delta: 1e-5 },
    });

    expect(report.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'completed', 2],
      [2, 'completed', 2],
    ]);
    const [r1, r2] = report.rounds;
    expect(r1!.recordEpsilon!).toBeGreaterThan(0);
    expect(r2!.recordEpsilon!).toBeGreaterThan(r1!.recordEpsilon!);
    expect(r1!.epsilon).toBeUndefined(); // no institution-level DP in this run
    expect(report.dpSgd).toEqual({ clipNorm: 1, noiseMultiplier: 1, epsilon: 50, delta: 1e-5 });
    expect(report.ledgers).toEqual([join(outDir, 'clients', 'client-1-record-ledger.jsonl'), join(outDir, 'clients', 'client-2-record-ledger.jsonl')]);

    const spent = report.ledgers!.map((path) => {
      const v = verifyLedgerFile(path);
      expect(v.valid).toBe(true);
      expect(v.unit).toBe('document'); // the default privacy unit: one simulated record
      const entries = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; params: { mode: string; steps: number } });
      expect(entries.map((e) => [e.kind, e.params.mode, e.params.steps])).toEqual([
        ['round', 'dp-sgd', 2],
        ['round', 'dp-sgd', 2],
      ]);
      return v.epsilon!;
    });
    expect(Math.max(...spent)).toBeCloseTo(r2!.recordEpsilon!, 6);
  }, 60_000);

  it('a retried round re-sends the update an institution already accounted: one spend for the round, and recordEpsilon in every round', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'fedlora-dpsgd-retry-e2e-'));
    let trained!: () => void;
    const client1Trained = new Promise<void>((resolve) => (trained = resolve));
    // client-1 trains attempt 1; client-2 then declines it (so the attempt aborts) and takes part in attempt 2.
    const wrapTrainer = (name: string, t: LocalTrainer): LocalTrainer => ({
      get numExamples() {
        return t.numExamples;
      },
      accept: async (plan) => (name === 'client-2' && plan.attempt === 1 ? (await client1Trained, { accept: false, reason: 'busy' }) : ((await t.accept?.(plan)) ?? { accept: true })),
      train: async (plan, global, progress) => {
        const r = await t.train(plan, global, progress);
        if (name === 'client-1') trained();
        return r;
      },
    });
    const report = await runSimulation({
      ...tinyDpRun(outDir, 'dp-sgd-retry-e2e'),
      rounds: 1,
      dpSgd: { clipNorm: 1, noiseMultiplier: 1, epsilon: 50, delta: 1e-5 },
      wrapTrainer,
    });
    expect(report.rounds.map((r) => [r.round, r.attempt, r.status])).toEqual([
      [1, 1, 'aborted'],
      [1, 2, 'completed'],
    ]);
    const entries = (path: string) => verifyLedgerFile(path).parsed.map((e) => [e.kind, e.round]);
    expect(entries(join(outDir, 'clients', 'client-1-record-ledger.jsonl'))).toEqual([['round', 1]]);
    expect(entries(join(outDir, 'clients', 'client-2-record-ledger.jsonl'))).toEqual([['round', 1]]);
    const spent = ['client-1', 'client-2'].map((c) => verifyLedgerFile(join(outDir, 'clients', `${c}-record-ledger.jsonl`)).epsilon!);
    expect(report.rounds[1]!.recordEpsilon!).toBeCloseTo(Math.max(...spent), 6);
  }, 120_000);

  it('a client refuses the round that would exceed its record-level budget; a federation that every client refuses fails promptly', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'fedlora-dpsgd-refuse-e2e-'));
    // With the sequence unit, one round (q about 4/60, 2 steps, z 1) costs about epsilon 2 at delta 1e-5: a budget of 2.1 affords one, not two.
    await expect(
      runSimulation({
        ...tinyDpRun(outDir, 'dp-sgd-refuse-e2e'),
        // "Promptly" without a timing assertion: the round deadline (an hour) is far beyond this test's timeout, so the
        // test passes only if the coordinator ends the round on the refusals themselves, not on the deadline.
        roundDeadlineMs: 3_600_000,
        dpSgd: { clipNorm: 1, noiseMultiplier: 1, epsilon: 2.1, privacyUnit: 'sequence' },
      }),
    ).rejects.toThrow(/round 2 aborted/);
    for (const name of ['client-1', 'client-2']) {
      const path = join(outDir, 'clients', `${name}-record-ledger.jsonl`);
      expect(verifyLedgerFile(path).valid).toBe(true);
      expect(verifyLedgerFile(path).epsilon!).toBeLessThanOrEqual(2.1);
      const kinds = readFileSync(path, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { kind: string }).kind);
      expect(kinds[0]).toBe('round');
      expect(kinds.slice(1).every((k) => k === 'refused')).toBe(true);
      expect(kinds.length).toBeGreaterThan(1);
    }
  }, 900_000);
});
