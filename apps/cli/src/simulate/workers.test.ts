import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel } from '@fedlora/model';
import { ModelTrainer } from '@fedlora/client';
import { FederationError } from '@fedlora/federation';
import type { RoundPlan } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { partitionCorpus } from './partition.js';
import type { WorkerDataSpec } from './workers-data.js';
import { clientTrainSequences } from './workers-data.js';
import { TrainingWorkerPool } from './workers.js';

/** A small population split as `simulate` splits it; the workers rebuild it from these settings alone. */
const data: WorkerDataSpec = { clients: 4, charsPerClient: 8_000, partition: { kind: 'iid' }, seed: 'workers-test', seqLen: 32, evalFraction: 0.1, recordChars: 400 };

let model: CausalLM;
let lora: LoraConfig;
let backend: string;
let global: NamedTensors;
let pool: TrainingWorkerPool;

const planOf = (round: number): RoundPlan => ({
  round,
  attempt: 0,
  adapterSha256: '',
  tensors: [...global].map(([name, t]) => ({ name, shape: [...t.shape] })),
  localSteps: 3,
  learningRate: 5e-3,
  batchSize: 4,
  deadlineUnixMs: 0,
  nonce: 'n',
  training: { lora },
});

beforeAll(async () => {
  backend = (await initBackend()).name;
  model = await loadModel(process.env.FEDLORA_MODEL_DIR || DEFAULT_BASE_MODEL_DIR);
  lora = { ...defaultLoraConfig(model), variant: 'lora' };
  global = initLoraAdapter(model, lora, seededRandomBytes('workers-test:init'));
  pool = await TrainingWorkerPool.start({ workers: 1, modelDir: process.env.FEDLORA_MODEL_DIR || DEFAULT_BASE_MODEL_DIR, backend, lora, data });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  model?.dispose();
});

describe('training in a worker process', () => {
  it('returns the update the in-process trainer computes for the same client, plan and seed', async () => {
    const train = clientTrainSequences(model, partitionCorpus(data.clients, data.charsPerClient, data.partition, data)[2]!, data);
    const local = await new ModelTrainer({ model, lora, train, seed: 'seed:c3' }).train(planOf(1), global);
    const steps: number[] = [];
    const remote = await pool.trainer({ name: 'c3', index: 2, numExamples: train.length, seed: 'seed:c3' }).train(planOf(1), global, async (s) => void steps.push(s));

    expect(steps).toEqual([1, 2, 3]); // the worker reported each step, in order
    expect(remote.numExamples).toBe(local.numExamples);
    expect(remote.trainLoss).toBeCloseTo(local.trainLoss, 5);
    expect([...remote.delta.keys()]).toEqual([...local.delta.keys()]);
    let maxDiff = 0;
    let maxAbs = 0;
    for (const [name, t] of local.delta) {
      const r = remote.delta.get(name)!.data;
      for (let i = 0; i < t.data.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(r[i]! - t.data[i]!));
        maxAbs = Math.max(maxAbs, Math.abs(t.data[i]!));
      }
    }
    expect(maxAbs).toBeGreaterThan(0); // it trained
    expect(maxDiff).toBeLessThanOrEqual(1e-6 * maxAbs);
  }, 120_000);

  it('stops the worker\'s training when the client\'s progress says the attempt closed', async () => {
    const closed = new FederationError('failed-precondition', 'round 1 attempt 0 closed at the coordinator');
    const t = pool.trainer({ name: 'c1', index: 0, numExamples: 1, seed: 's' });
    await expect(t.train({ ...planOf(1), localSteps: 50 }, global, async (step) => { if (step === 2) throw closed; })).rejects.toBe(closed);
    // The worker is free again: the next task runs to the end.
    await expect(t.train(planOf(2), global)).resolves.toMatchObject({ numExamples: expect.any(Number) });
  }, 120_000);

  it('fails a crashed worker\'s task with a clear error, restarts the worker, and trains the next task', async () => {
    const [pid] = pool.pids;
    const t = pool.trainer({ name: 'c2', index: 1, numExamples: 1, seed: 's' });
    const crashed = t.train({ ...planOf(3), localSteps: 50 }, global, async (step) => {
      if (step === 1) process.kill(pid!, 'SIGKILL');
    });
    await expect(crashed).rejects.toThrow(/round 3: the training worker 0 \(pid \d+\) died \(signal SIGKILL\) while training c2: this client misses the round/);
    await expect(crashed).rejects.toBeInstanceOf(FederationError);
    const next = await t.train(planOf(4), global);
    expect(pool.pids[0]).not.toBe(pid);
    expect(next.delta.size).toBe(global.size);
  }, 120_000);
});
