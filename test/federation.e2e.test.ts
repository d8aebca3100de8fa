import { describe, expect, it } from 'vitest';
import type { LocalTrainer } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { cloneNamed } from '@fedlora/tensor';
import { runSimulation } from '@fedlora/cli';
import type { SimulationOptions } from '@fedlora/cli';

/** Small but real: the bundled base model, real tokenization, real training, real gRPC. */
const base: SimulationOptions = {
  clients: 3,
  rounds: 2,
  localSteps: 6,
  batchSize: 8,
  learningRate: 5e-3,
  seqLen: 32,
  charsPerClient: 20_000,
  evalSequences: 8,
  evalFraction: 0.1,
  roundDeadlineMs: 300_000,
  strategy: { name: 'fedavg' },
  seed: 'e2e',
};

describe('a 3-client federation over gRPC on 127.0.0.1', () => {
  it('makes the new global adapter the example-weighted mean of the client updates, and eval loss falls', async () => {
    const sent = new Map<number, Array<{ delta: NamedTensors; numExamples: number }>>();
    const adapters = new Map<number, { before: NamedTensors; after: NamedTensors | null }>();
    const wrapTrainer = (_name: string, inner: LocalTrainer): LocalTrainer => ({
      numExamples: inner.numExamples,
      async train(plan, global, progress) {
        const r = await inner.train(plan, global, progress);
        const list = sent.get(plan.round) ?? [];
        list.push({ delta: cloneNamed(r.delta), numExamples: r.numExamples });
        sent.set(plan.round, list);
        return r;
      },
    });
    const report = await runSimulation({
      ...base,
      wrapTrainer,
      onRoundAdapters: (round, before, after) => adapters.set(round, { before: cloneNamed(before), after: after && cloneNamed(after) }),
    });

    expect(report.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'completed', 3],
      [2, 'completed', 3],
    ]);
    for (const round of [1, 2]) {
      const updates = sent.get(round)!;
      expect(updates).toHaveLength(3);
      const { before, after } = adapters.get(round)!;
      const total = updates.reduce((a, u) => a + u.numExamples, 0);
      let checked = 0;
      for (const [name, t] of before) {
        const got = after!.get(name)!.data;
        for (let i = 0; i < t.data.length; i += 7) {
          let mean = 0;
          for (const u of updates) mean += (u.numExamples / total) * u.delta.get(name)!.data[i]!;
          expect(got[i]).toBeCloseTo(t.data[i]! + mean, 5);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(100);
    }
    expect(report.rounds.at(-1)!.evalLoss!).toBeLessThan(report.initialEvalLoss);
    expect(report.rounds[1]!.evalLoss!).toBeLessThan(report.rounds[0]!.evalLoss!);
  });

  it('drops a client that never answers and still completes every round', async () => {
    const report = await runSimulation({ ...base, rounds: 1, localSteps: 2, silentClients: 1, minClients: 3, waitAfterMinimumMs: 300 });
    expect(report.rounds).toHaveLength(1);
    expect(report.rounds[0]).toMatchObject({ status: 'completed', participants: 3, dropped: ['silent-1'] });
  });
});
