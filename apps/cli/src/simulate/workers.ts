/**
 * `simulate --workers N`: the cohort's local training in N worker processes (workers-child.ts),
 * behind the LocalTrainer interface. Each simulated client keeps its whole node in the
 * simulator's process (identity, plan checks, privacy guard, budget, ledger, SecAgg+ with its
 * noise); only the innermost trainer is a proxy that ships the plan, the global adapter and the
 * client's partition id to a free worker and returns the delta it computes.
 *
 * Processes, not worker_threads: a native addon (native-cpu) or wasm abort in a worker kills
 * only that process, so a crash costs one client one round (it misses it with a clear error; the
 * worker is restarted) instead of the simulation; and each process has its own tfjs engine and
 * heap. Measured cost: one copy of the (read-only) base model per worker (see fleet.md).
 */
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LoraConfig } from '@fedlora/model';
import type { EventLogger, LocalTrainer, RoundPlan, TrainingProgress } from '@fedlora/federation';
import { FederationError, silentLogger } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import type { FromWorker, ToWorker } from './workers-child.js';
import type { WorkerDataSpec } from './workers-data.js';

/** Settings of a pool of training workers. */
export interface WorkerPoolOptions {
  workers: number;
  modelDir: string;
  /** The backend the simulator chose: workers use the same, so their updates equal in-process ones. */
  backend: string;
  lora: LoraConfig;
  data: WorkerDataSpec;
  logger?: EventLogger;
  /** Restarts after crashes before the pool gives up on a slot (default 3 per worker). */
  maxRestarts?: number;
}

/** What a proxied client is: its name, partition id, example count and trainer seed (as the in-process ModelTrainer gets them). */
export interface ProxiedClient {
  name: string;
  index: number;
  numExamples: number;
  seed: string;
  onStep?: (round: number, s: { step: number; loss: number; tokensPerSecond: number }) => void;
}

type TrainResult = Awaited<ReturnType<LocalTrainer['train']>>;

interface Task {
  id: number;
  client: ProxiedClient;
  plan: RoundPlan;
  global: NamedTensors;
  progress?: TrainingProgress;
  resolve: (r: TrainResult) => void;
  reject: (e: Error) => void;
  /** Set once the client gave up on the task (its attempt closed): the worker's answer is dropped. */
  abandoned?: boolean;
  steps: Promise<void>;
}

interface Slot {
  index: number;
  child: ChildProcess;
  task?: Task;
  /** Peak RSS (VmHWM) of this slot's processes so far, bytes. */
  peakRss: number;
}

const CHILD = fileURLToPath(new URL('./workers-child.ts', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A fixed set of training processes and the queue of tasks waiting for one. */
export class TrainingWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closing = false;
  private restarts = 0;
  private readonly log: EventLogger;

  private constructor(private readonly opts: WorkerPoolOptions) {
    this.log = opts.logger ?? silentLogger;
  }

  /** Forks the workers and waits until each has loaded the model. */
  static async start(opts: WorkerPoolOptions): Promise<TrainingWorkerPool> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new RangeError(`workers must be a positive integer, received ${opts.workers}`);
    const pool = new TrainingWorkerPool(opts);
    try {
      for (let i = 0; i < opts.workers; i++) pool.slots.push(await pool.spawn(i));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Process ids of the workers (for fault-injection tests and RSS sampling). */
  get pids(): number[] {
    return this.slots.map((s) => s.child.pid!);
  }

  /** The sum over workers of each one's peak RSS (an upper bound of their peak together), bytes. */
  peakRssBytes(): number {
    for (const s of this.slots) s.peakRss = Math.max(s.peakRss, vmHwm(s.child.pid));
    return this.slots.reduce((n, s) => n + s.peakRss, 0);
  }

  /** The LocalTrainer of one client whose training runs in the pool. */
  trainer(client: ProxiedClient): LocalTrainer {
    return {
      numExamples: client.numExamples,
      train: (plan, global, progress) => this.submit(client, plan, global, progress),
    };
  }

  /** Stops every worker (tasks still queued fail). */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.queue.splice(0)) t.reject(new FederationError('unavailable', 'the training workers are shutting down'));
    this.peakRssBytes();
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
            s.child.once('exit', () => resolve());
            s.child.disconnect?.();
            setTimeout(() => s.child.kill('SIGKILL'), 2000).unref();
          }),
      ),
    );
  }

  private submit(client: ProxiedClient, plan: RoundPlan, global: NamedTensors, progress?: TrainingProgress): Promise<TrainResult> {
    if (this.closing) return Promise.reject(new FederationError('unavailable', 'the training workers are shutting down'));
    return new Promise<TrainResult>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, client, plan, global, progress, resolve, reject, steps: Promise.resolve() });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.task || !slot.child.connected) continue;
      const task = this.queue.shift();
      if (!task) return;
      slot.task = task;
      // The worker needs no secret: the plan's secure-aggregation part (roster, keys) and the ledger head stay here.
      const plan: RoundPlan = { ...task.plan, secagg: undefined, ledgerHead: undefined };
      this.post(slot, { kind: 'train', id: task.id, index: task.client.index, seed: task.client.seed, plan, global: task.global });
    }
  }

  private post(slot: Slot, m: ToWorker): void {
    slot.child.send(m, (err) => {
      if (err) this.log.warn({ event: 'workers.send-failed', worker: slot.index, reason: err.message });
    });
  }

  private spawn(index: number): Promise<Slot> {
    // The cores are shared out: each worker's BLAS gets cores / workers threads (unless FEDLORA_NUM_THREADS says otherwise), not all of them each.
    const threads = process.env.FEDLORA_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / this.opts.workers)));
    const child = fork(CHILD, [], { execArgv: ['--import', TSX], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, FEDLORA_NUM_THREADS: threads } });
    let stderr = '';
    // Kept for a crash report (the worker holds no secret; its last words say why it died).
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const slot: Slot = { index, child, peakRss: 0 };
    return new Promise<Slot>((resolve, reject) => {
      const early = (code: number | null, signal: string | null) => reject(new Error(`training worker ${index} exited while loading the model (code ${code}, signal ${signal}): ${stderr.trim().slice(-500)}`));
      child.once('exit', early);
      child.on('message', (m: FromWorker) => {
        if (m.kind === 'ready') {
          child.off('exit', early);
          child.on('exit', (code, signal) => this.onExit(slot, code, signal, stderr));
          slot.peakRss = m.rssBytes;
          this.log.info({ event: 'workers.ready', worker: index, pid: child.pid, backend: m.backend, rssBytes: m.rssBytes });
          resolve(slot);
        } else if (m.kind === 'init-failed') {
          child.off('exit', early);
          child.kill();
          reject(new Error(`training worker ${index} could not load the model: ${m.message}`));
        } else this.onMessage(slot, m);
      });
      const o = this.opts;
      this.post(slot, { kind: 'init', modelDir: o.modelDir, backend: o.backend, lora: o.lora, data: o.data });
    });
  }

  private onMessage(slot: Slot, m: Exclude<FromWorker, { kind: 'ready' | 'init-failed' }>): void {
    const task = slot.task;
    if (!task || task.id !== m.id) return;
    if (m.kind === 'step') {
      task.client.onStep?.(task.plan.round, m);
      // Progress in order; when it throws (the attempt closed, the client is stopping), the worker is told to stop.
      task.steps = task.steps.then(async () => {
        if (task.abandoned) return;
        try {
          await task.progress?.(m.step);
        } catch (err) {
          task.abandoned = true;
          this.post(slot, { kind: 'cancel', id: task.id });
          task.reject(err as Error);
        }
      });
      return;
    }
    slot.task = undefined;
    if (m.kind === 'done') slot.peakRss = Math.max(slot.peakRss, m.rssBytes);
    void task.steps.then(() => {
      if (task.abandoned) return;
      if (m.kind === 'done') task.resolve({ delta: m.delta, numExamples: m.numExamples, trainLoss: m.trainLoss, ...(m.metrics ? { metrics: m.metrics } : {}) });
      else task.reject(new FederationError('failed-precondition', `round ${task.plan.round}: training ${task.client.name} in worker ${slot.index} failed: ${m.message}`));
    });
    this.dispatch();
  }

  private onExit(slot: Slot, code: number | null, signal: string | null, stderr: string): void {
    if (this.closing) return;
    const task = slot.task;
    slot.task = undefined;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    this.log.error({ event: 'workers.crashed', worker: slot.index, pid: slot.child.pid, exit: how, ...(task ? { client: task.client.name, round: task.plan.round } : {}) });
    if (task && !task.abandoned) {
      task.abandoned = true;
      // failed-precondition: the client loop logs the round as missed and asks for the next task; the round goes on without it.
      task.reject(new FederationError('failed-precondition', `round ${task.plan.round}: the training worker ${slot.index} (pid ${slot.child.pid}) died (${how}) while training ${task.client.name}: this client misses the round${stderr.trim() ? `; worker stderr: ${stderr.trim().slice(-300)}` : ''}`));
    }
    const limit = this.opts.maxRestarts ?? 3 * this.opts.workers;
    if (this.restarts >= limit) {
      this.log.error({ event: 'workers.gave-up', worker: slot.index, restarts: this.restarts });
      if (this.slots.every((s) => !s.child.connected)) for (const t of this.queue.splice(0)) t.reject(new FederationError('failed-precondition', `every training worker died (${this.restarts} restarts): no client can train`));
      return;
    }
    this.restarts++;
    const peak = slot.peakRss;
    this.spawn(slot.index).then(
      (fresh) => {
        fresh.peakRss = Math.max(fresh.peakRss, peak);
        this.slots[slot.index] = fresh;
        this.dispatch();
      },
      (err: Error) => this.log.error({ event: 'workers.restart-failed', worker: slot.index, reason: err.message }),
    );
  }
}

/** Peak resident set size (VmHWM) of a process, bytes; 0 when unknown (not Linux, or it exited). */
export function vmHwm(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
