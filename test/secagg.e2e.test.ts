import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { verifyLedgerFile } from '@fedlora/privacy';
import { runSimulation } from '@fedlora/cli';
import type { SimulationOptions } from '@fedlora/cli';

// Forced dropouts each cost a stage timeout, and all 8 clients share one process: allow time under CI load.
vi.setConfig({ testTimeout: 240_000 });

const base: SimulationOptions = {
  clients: 8,
  rounds: 1,
  localSteps: 1,
  batchSize: 4,
  learningRate: 5e-3,
  seqLen: 32,
  charsPerClient: 6_000,
  evalSequences: 2,
  evalFraction: 0.1,
  roundDeadlineMs: 120_000,
  strategy: { name: 'fedavg' },
  seed: 'secagg-e2e',
};

describe('secure aggregation (SecAgg+) over gRPC on 127.0.0.1, 8 clients', () => {
  it('gives the plain average of the survivors within 1e-3 when clients drop at advertise, share and collect', async () => {
    const report = await runSimulation({
      ...base,
      minClients: 4,
      // livenessMs: a client that vanished at collect is noticed after one stage timeout of silence (training is 1 step here).
      secagg: { dropout: 0, clipNorm: 10, stageTimeoutMs: 10_000, livenessMs: 10_000, k: 7, t: 4, forcedDrops: { 'client-1': 'advertise', 'client-2': 'share', 'client-3': 'collect' } },
    });
    const [r] = report.rounds;
    expect(r).toMatchObject({ status: 'completed', survivors: 5 });
    expect(r!.aggregateMaxAbsError!).toBeLessThan(1e-3);
  });

  it('recovers the masks of clients that drop after sending their masked input', async () => {
    const report = await runSimulation({
      ...base,
      minClients: 4,
      secagg: { dropout: 0, clipNorm: 10, stageTimeoutMs: 10_000, k: 7, t: 4, forcedDrops: { 'client-4': 'consistency', 'client-5': 'unmask' } },
    });
    const [r] = report.rounds;
    expect(r).toMatchObject({ status: 'completed', survivors: 8 });
    expect(r!.aggregateMaxAbsError!).toBeLessThan(1e-3);
  });

  it('aborts the round cleanly, and records nothing released, when too many clients drop', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'fedlora-secagg-abort-'));
    const drops = Object.fromEntries([1, 2, 3, 4, 5, 6].map((i) => [`client-${i}`, 'collect' as const]));
    await expect(
      runSimulation({
        ...base,
        minClients: 2,
        outDir,
        privacy: { mode: 'distributed', clipNorm: 0.05, noiseMultiplier: 1, delta: 1e-5, clientEpsilon: 100 },
        secagg: { dropout: 0, clipNorm: 0.05, stageTimeoutMs: 5000, livenessMs: 5000, k: 7, t: 4, forcedDrops: drops },
      }),
    ).rejects.toThrow(/aborted 3 times/);
    const ledger = join(outDir, 'federation-ledger.jsonl');
    const entries = readFileSync(ledger, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(entries.map((e) => e.kind)).toEqual(['aborted', 'aborted', 'aborted']);
    expect(entries[0].note).toMatch(/threshold/);
    const v = verifyLedgerFile(ledger);
    expect(v.valid).toBe(true);
    expect(v.epsilon).toBe(0);
  });
});
