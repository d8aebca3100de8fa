/**
 * The seam between the simulator (run-simulation.ts) and the training workers (workers.ts): which
 * simulations can train in workers, the data spec every worker rebuilds the partition from, and
 * the default worker count.
 */
import { availableParallelism } from 'node:os';
import type { LoraConfig } from '@fedlora/model';
import type { EventLogger } from '@fedlora/federation';
import type { Partition } from './partition.js';
import { TrainingWorkerPool } from './workers.js';

/** `--workers` default: one training process per core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

/** The simulation settings a worker pool depends on. */
export interface WorkerSimulation {
  workers?: number;
  clients: number;
  charsPerClient: number;
  partition?: Partition;
  seed: string;
  seqLen: number;
  evalFraction: number;
  task?: 'text' | 'qa';
  dpSgd?: unknown;
}

/** Why this simulation cannot train in workers yet (undefined: it can). */
export function workersUnsupported(o: Pick<WorkerSimulation, 'task' | 'dpSgd'>): string | undefined {
  if (o.task === 'qa') return 'task qa trains in the simulator\'s process (instruction data is not rebuilt from a partition id in workers yet)';
  if (o.dpSgd) return 'record-level DP-SGD trains in the simulator\'s process (its record-level budget guard and noise stay with the client)';
  return undefined;
}

/** Starts `o.workers` training workers for this simulation, or none when `o.workers` is unset. */
export async function startSimulationWorkers(
  o: WorkerSimulation,
  env: { modelDir: string; backend: string; lora: LoraConfig; recordChars: number; logger?: EventLogger },
): Promise<TrainingWorkerPool | undefined> {
  if (o.workers === undefined) return undefined;
  const why = workersUnsupported(o);
  if (why) throw new RangeError(`simulate --workers: ${why}; drop --workers`);
  return TrainingWorkerPool.start({
    workers: o.workers,
    modelDir: env.modelDir,
    backend: env.backend,
    lora: env.lora,
    data: { clients: o.clients, charsPerClient: o.charsPerClient, partition: o.partition ?? { kind: 'era' }, seed: o.seed, seqLen: o.seqLen, evalFraction: o.evalFraction, recordChars: env.recordChars },
    ...(env.logger ? { logger: env.logger } : {}),
  });
}
