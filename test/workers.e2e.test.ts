import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { EventLogger, LocalTrainer } from '@fedlora/federation';
import { runSimulation } from '@fedlora/cli';
import type { SimulationOptions } from '@fedlora/cli';

/** Small but real: the bundled base model, real tokenization, training in real worker processes, real gRPC. */
const base: SimulationOptions = {
  clients: 3,
  rounds: 2,
  localSteps: 4,
  batchSize: 8,
  learningRate: 5e-3,
  seqLen: 32,
  charsPerClient: 12_000,
  evalSequences: 4,
  evalFraction: 0.1,
  roundDeadlineMs: 300_000,
  strategy: { name: 'fedavg' },
  seed: 'workers-e2e',
};

/** Process ids of this process' training workers. */
function workerPids(): number[] {
  return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('workers-child'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

describe('simulate --workers', () => {
  it('trains the same federation as in-process training (same seed, same adapters)', async () => {
    const inProcess = await runSimulation(base);
    const inWorkers = await runSimulation({ ...base, workers: 2 });
    expect(inWorkers.workers?.count).toBe(2);
    expect(inWorkers.rounds.map((r) => [r.round, r.status, r.participants])).toEqual(inProcess.rounds.map((r) => [r.round, r.status, r.participants]));
    for (const [i, r] of inWorkers.rounds.entries()) expect(r.trainLoss!).toBeCloseTo(inProcess.rounds[i]!.trainLoss!, 4);
    expect(inWorkers.finalEvalLoss!).toBeCloseTo(inProcess.finalEvalLoss!, 4);
    expect(inWorkers.finalEvalLoss!).toBeLessThan(inWorkers.initialEvalLoss);
  }, 600_000);

  it('goes on without a client whose worker crashed (the client says why), and the client trains again next round', async () => {
    const missed: Array<Record<string, unknown>> = [];
    const logger: EventLogger = { info: () => {}, error: () => {}, warn: (e) => void (e.event === 'round.missed' && missed.push(e)) };
    let victim: string | undefined;
    const trained = new Map<number, string[]>();
    const wrapTrainer = (name: string, inner: LocalTrainer): LocalTrainer => ({
      numExamples: inner.numExamples,
      async train(plan, global, progress) {
        const r = await inner.train(plan, global, async (step) => {
          // The first client to reach a step in round 1 loses its worker (a crash: SIGKILL).
          if (plan.round === 1 && victim === undefined) {
            victim = name;
            for (const pid of workerPids()) process.kill(pid, 'SIGKILL');
          }
          await progress?.(step);
        });
        trained.set(plan.round, [...(trained.get(plan.round) ?? []), name]);
        return r;
      },
    });
    const report = await runSimulation({ ...base, workers: 1, minClients: 2, waitAfterMinimumMs: 2_000, wrapTrainer, logger });

    expect(victim).toBeDefined();
    expect(report.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'completed', 2],
      [2, 'completed', 3],
    ]);
    expect(trained.get(1)).not.toContain(victim);
    expect(trained.get(2)).toContain(victim);
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({ client: victim, reason: expect.stringMatching(/round 1: the training worker 0 \(pid \d+\) died \(signal SIGKILL\) while training .*: this client misses the round/) });
  }, 600_000);
});
