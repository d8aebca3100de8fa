/**
 * A training worker of `simulate --workers N` (forked by workers.ts, one per core). It loads the
 * read-only base model once, rebuilds any client's training sequences from its partition id
 * (workers-data.ts), and runs the client's local training with the same ModelTrainer an
 * in-process client uses, one task at a time. It sees the plan, the global adapter and public
 * data only: no identity key, no ledger, no noise (those stay with the client in the simulator's
 * process: PrivacyGuardedTrainer clips and records, the SecAgg+ client adds the distributed noise).
 * Nothing is printed on stdout (the simulator's `--json` owns it); failures go back as messages.
 */
import type { LoraConfig } from '@fedlora/model';
import { initBackend, loadModel } from '@fedlora/model';
import { ModelTrainer } from '@fedlora/client';
import type { RoundPlan } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import type { WorkerDataSpec } from './workers-data.js';
import { WorkerClientData } from './workers-data.js';

/** Parent -> worker. */
export type ToWorker =
  | { kind: 'init'; modelDir: string; backend: string; lora: LoraConfig; data: WorkerDataSpec }
  | { kind: 'train'; id: number; index: number; seed: string; plan: RoundPlan; global: NamedTensors }
  | { kind: 'cancel'; id: number }
  /** Test hook (fault injection): the worker exits at once, as a crash would. */
  | { kind: 'crash' };

/** Worker -> parent. */
export type FromWorker =
  | { kind: 'ready'; backend: string; rssBytes: number }
  | { kind: 'init-failed'; message: string }
  | { kind: 'step'; id: number; step: number; loss: number; tokensPerSecond: number }
  | { kind: 'done'; id: number; delta: NamedTensors; numExamples: number; trainLoss: number; metrics?: Record<string, number>; rssBytes: number }
  | { kind: 'failed'; id: number; message: string };

const send = (m: FromWorker) => process.send!(m);
let state: { model: Awaited<ReturnType<typeof loadModel>>; lora: LoraConfig; data: WorkerClientData } | undefined;
const cancelled = new Set<number>();

/** Thrown into trainLocal's step loop when the parent cancelled the task (the attempt closed). */
class Cancelled extends Error {}

async function train(m: Extract<ToWorker, { kind: 'train' }>): Promise<void> {
  if (!state) throw new Error('the worker was asked to train before it was initialised');
  const trainer = new ModelTrainer({
    model: state.model,
    lora: state.lora,
    train: state.data.train(m.index),
    seed: m.seed,
    onStep: (_round, s) => send({ kind: 'step', id: m.id, step: s.step, loss: s.loss, tokensPerSecond: s.tokensPerSecond }),
  });
  // Between steps: let the parent's messages in (a cancel), then stop if the task was cancelled.
  const progress = async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (cancelled.has(m.id)) throw new Cancelled();
  };
  const r = await trainer.train(m.plan, m.global, progress);
  send({ kind: 'done', id: m.id, delta: r.delta, numExamples: r.numExamples, trainLoss: r.trainLoss, ...(r.metrics ? { metrics: r.metrics } : {}), rssBytes: process.memoryUsage.rss() });
}

// One task at a time: the parent's pool never sends a second before the first ends.
let chain = Promise.resolve();
process.on('message', (m: ToWorker) => {
  if (m.kind === 'cancel') return void cancelled.add(m.id);
  if (m.kind === 'crash') process.exit(70);
  chain = chain.then(async () => {
    if (m.kind === 'init') {
      try {
        const backend = await initBackend({ backend: m.backend });
        const model = await loadModel(m.modelDir);
        state = { model, lora: m.lora, data: new WorkerClientData(model, m.data) };
        send({ kind: 'ready', backend: backend.name, rssBytes: process.memoryUsage.rss() });
      } catch (err) {
        send({ kind: 'init-failed', message: (err as Error).message });
      }
      return;
    }
    try {
      await train(m);
    } catch (err) {
      send({ kind: 'failed', id: m.id, message: err instanceof Cancelled ? 'cancelled' : (err as Error).message });
    } finally {
      cancelled.delete(m.id);
    }
  });
});
// The parent went away: nothing left to train for.
process.on('disconnect', () => process.exit(0));
