/**
 * The instruction-tuning simulation (`fedlora simulate --task qa`): a real coordinator and real
 * clients over gRPC on 127.0.0.1, instruction-tuning the bundled model on the SOTU party facts.
 * Each institution scores every global adapter on its own held-out questions (held-out phrasings,
 * two balanced choices: chance 0.5) and the coordinator reports the federation's accuracy per
 * round; in secure rounds those metrics are summed inside SecAgg+.
 */
import { describe, expect, it } from 'vitest';
import { runSimulation, type SimulationOptions } from '@fedlora/cli';

const QA: SimulationOptions = {
  task: 'qa',
  clients: 3,
  rounds: 8,
  localSteps: 15,
  batchSize: 16,
  learningRate: 5e-3,
  seqLen: 64,
  charsPerClient: 60_000,
  evalSequences: 2,
  evalFraction: 0.1,
  roundDeadlineMs: 600_000,
  strategy: { name: 'fedavg' },
  seed: 'fedlora',
};

describe('simulate --task qa', () => {
  it('federated MCQ accuracy starts at chance and rises over the rounds, well above chance at the end', async () => {
    const report = await runSimulation(QA);
    expect(report.rounds.every((r) => r.status === 'completed' && r.participants === 3)).toBe(true);
    const acc = report.rounds.map((r) => r.evaluation!.acc!);
    // 30 presidents x 2 held-out phrasings, over the 3 institutions.
    expect(report.rounds.every((r) => r.evaluation!.count === 60 && r.evaluation!.clients === 3)).toBe(true);
    expect(acc[0]).toBeLessThanOrEqual(0.55);
    expect(acc.at(-1)!).toBeGreaterThanOrEqual(acc[0]! + 0.2);
    expect(Math.max(...acc.slice(-3))).toBeGreaterThan(Math.max(...acc.slice(0, 3)));
    expect(report.finalEvaluation!.acc).toBeGreaterThanOrEqual(0.75);
  }, 1_200_000);

  it('secure rounds (SecAgg+) carry the evaluation, summed inside the masked inputs', async () => {
    const report = await runSimulation({ ...QA, rounds: 2, localSteps: 2, secagg: { dropout: 0, clipNorm: 10, stageTimeoutMs: 30_000 } });
    expect(report.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
    for (const r of report.rounds) expect(r.evaluation).toMatchObject({ clients: 3, count: 60, secure: true, acc: expect.any(Number) });
  }, 600_000);
});
