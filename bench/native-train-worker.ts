/**
 * One measurement of the LoRA training step in a fresh process (so peak RSS is this config's
 * alone and a wasm abort cannot take the whole benchmark down). Prints one JSON line on stdout.
 *
 *   tsx bench/native-train-worker.ts '{"backend":"cpu-native","layers":4,"vocab":512,"steps":3,"warmup":1,"maxSeconds":120,"profile":false}'
 *
 * FEDLORA_BENCH_DEBUG=1 also prints user and system CPU time per step on stderr.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedlora/model';
import { loadNativeCpu } from '@fedlora/native-cpu';
import { kernelTotals } from './kernel-totals.js';
import { buildGpt2Lora, lossOf, type Gpt2Shape } from './native-gpt2.js';

/** Configuration passed by the orchestrator (bench/native-train.ts). */
export interface WorkerConfig {
  backend: 'cpu-pure' | 'cpu-native' | 'wasm';
  layers: number;
  vocab: number;
  dModel?: number;
  heads?: number;
  seq?: number;
  batch?: number;
  rank?: number;
  steps: number;
  warmup: number;
  maxSeconds: number;
  profile: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]!;
}

async function profileStep(step: () => void, top = 12): Promise<{ kernel: string; ms: number; calls: number }[]> {
  const info = await tf.profile(step);
  return kernelTotals(info.kernels)
    .slice(0, top)
    .map(({ key, ms, calls }) => ({ kernel: key, ms, calls }));
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
  // The model library's backend ladder, forced to one rung (it registers tfjs' gradients too).
  const rung = { 'cpu-pure': 'cpu', 'cpu-native': 'native', wasm: 'wasm' }[cfg.backend];
  const chosen = await initBackend({ backend: rung });
  let path = `${chosen.name} (tf backend ${tf.getBackend()})`;
  if (cfg.backend === 'cpu-native') {
    const status = loadNativeCpu();
    path = `${status.name} (${status.blas ?? 'no BLAS'}, ${status.threads} threads)`;
  }
  const shape: Gpt2Shape = {
    layers: cfg.layers, vocab: cfg.vocab, dModel: cfg.dModel ?? 768, heads: cfg.heads ?? 12,
    seq: cfg.seq ?? 128, batch: cfg.batch ?? 4, rank: cfg.rank ?? 8,
  };
  process.stderr.write(`[native-train] ${path}: ${JSON.stringify(shape)}\n`);
  const model = buildGpt2Lora(shape);
  const n = shape.batch * shape.seq;
  const idsData = new Int32Array(n), labelData = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    idsData[i] = (i * 7919) % shape.vocab;
    labelData[i] = ((i + 1) * 7919) % shape.vocab;
  }
  const ids = tf.tensor2d(idsData, [shape.batch, shape.seq], 'int32');
  const labels = tf.tensor1d(labelData, 'int32');
  const optimizer = tf.train.adam(1e-4);
  let lastLoss = NaN;
  const step = (): void => {
    const loss = optimizer.minimize(() => lossOf(model, ids, labels), true, model.trainable);
    lastLoss = loss!.dataSync()[0]!;
    loss!.dispose();
  };
  const started = performance.now();
  const stepMs: number[] = [];
  const stepCpuMs: number[] = [];
  const warmupMs: number[] = [];
  for (let i = 0; i < cfg.warmup + cfg.steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    step();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    if (i >= cfg.warmup) stepCpuMs.push((cpu.user + cpu.system) / 1000);
    if (process.env.FEDLORA_BENCH_DEBUG) process.stderr.write(`[native-train] user ${(cpu.user / 1000).toFixed(0)} sys ${(cpu.system / 1000).toFixed(0)} ms\n`);
    (i < cfg.warmup ? warmupMs : stepMs).push(ms);
    process.stderr.write(`[native-train] step ${i} ${ms.toFixed(0)} ms loss ${lastLoss.toFixed(4)}\n`);
    if ((performance.now() - started) / 1000 > cfg.maxSeconds) break;
  }
  let topKernels: Awaited<ReturnType<typeof profileStep>> | undefined;
  if (cfg.profile) {
    // With no timed steps (the slow pure backend) the profiled step is the measurement.
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    topKernels = await profileStep(step);
    if (stepMs.length === 0) {
      stepMs.push(performance.now() - t0);
      const cpu = process.cpuUsage(c0);
      stepCpuMs.push((cpu.user + cpu.system) / 1000);
    }
  }
  const timed = stepMs.length > 0 ? stepMs : warmupMs;
  const med = median(timed);
  const result = {
    backend: cfg.backend,
    path,
    shape,
    stepMs: timed.map((x) => Math.round(x)),
    warmupMs: warmupMs.map((x) => Math.round(x)),
    medianStepMs: Math.round(med),
    // CPU time of the whole process (all threads) per step: steadier than wall time on a shared machine.
    stepCpuMs: stepCpuMs.map((x) => Math.round(x)),
    medianStepCpuMs: Math.round(median(stepCpuMs)),
    tokensPerSec: Math.round((n / med) * 1000 * 10) / 10,
    loss: lastLoss,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    topKernels,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`[native-train] failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
