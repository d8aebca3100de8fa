/**
 * One DP-SGD gradient for LoRA. By default per-example norms and the clipped sum come from one
 * batched forward and backward pass (`ghostClippedLoraGradSum`, dp-sgd-ghost.ts). The reference
 * method, `per-example`, runs one forward and backward pass per sequence and downloads each
 * gradient (r (dIn + dOut) floats per adapted layer, e.g. 24 576 for the tiny base model at r 8);
 * it is kept for tests and for the benchmark's comparison.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { DEFAULT_GRID_FRACTION, privatizeGradients, privatizeGridCounts } from '@fedlora/privacy';
import { crossEntropy, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import { ghostClippedLoraGradSum, type ClippedSumMethod, type GhostCompute } from './dp-sgd-ghost.js';
import { toTensors } from './trainer.js';
import { groupUnits, unitSlice } from './ghost-units.js';
import { yieldToEventLoop } from './event-loop.js';
import { timed, type DpSgdProfiler } from './dp-sgd-phases.js';

/**
 * The gradient of each sequence's mean next-token loss (over its unmasked targets, loss-mask.ts) with respect to every LoRA tensor in
 * `vars`, with that sequence's loss. `dropoutSeeds[i]` seeds sequence i's LoRA dropout masks.
 */
export async function perExampleLoraGrads(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  dropoutSeeds: readonly number[],
  frozen: ReadonlyMap<string, tf.Tensor> = new Map(),
): Promise<{ grads: NamedTensors[]; losses: number[] }> {
  if (dropoutSeeds.length !== sequences.length) throw new RangeError(`dropoutSeeds must have ${sequences.length} values, received ${dropoutSeeds.length}`);
  const names = [...vars.keys()];
  const varList = names.map((n) => vars.get(n)!);
  const grads: NamedTensors[] = [];
  const losses: number[] = [];
  for (let i = 0; i < sequences.length; i++) {
    const seq = sequences[i]!;
    const { inputs, targets, weights } = toTensors([seq], seq.length - 1);
    const { value, grads: g } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
      const rt = loraRuntime(model, lora, new Map([...frozen, ...names.map((n, k) => [n, xs[k]!] as const)]));
      const logits = model.forward(inputs, { lora: rt, training: true, seed: dropoutSeeds[i]! });
      return crossEntropy(logits, targets, weights);
    })(varList);
    const host: NamedTensors = new Map();
    for (let k = 0; k < names.length; k++) host.set(names[k]!, { shape: [...g[k]!.shape], data: new Float32Array((await g[k]!.data()) as Float32Array) });
    losses.push((await value.data())[0]!);
    tf.dispose([value, inputs, targets, ...(weights ? [weights] : []), ...g]);
    grads.push(host);
  }
  return { grads, losses };
}

/** How per-example gradients are obtained: one batched pass (`ghost`) or one pass per sequence (`per-example`, the reference). */
export type PerExampleMethod = 'ghost' | 'per-example';

/** Options of `privateLoraGradient`. */
export interface PrivateGradientOptions {
  clipNorm: number;
  noiseMultiplier: number;
  /** q N: the sum is divided by the expected, not the realised, batch size. */
  expectedBatchSize: number;
  rng: RandomBytes;
  /** Seed of this step's LoRA dropout masks (`per-example` seeds sequence i with dropoutSeed + i). */
  dropoutSeed: number;
  /** Default `ghost`. */
  method?: PerExampleMethod;
  /** Ghost method only: how the clipped sum is formed (default `traces`). */
  clippedSum?: ClippedSumMethod;
  /** Ghost method only: norms and sums on the device (default) or on the host in float64. */
  compute?: GhostCompute;
  /**
   * The privacy unit (0 .. G-1) of each sequence: a unit's sequences' gradients are summed and
   * the sum clipped as one (ghost-units.ts). Default: each sequence is its own unit.
   */
  units?: readonly number[];
  /** Adapter tensors that are not trained (FFA-LoRA's A): used in the forward pass, never clipped, noised or returned. */
  frozen?: ReadonlyMap<string, tf.Tensor>;
  /**
   * Ghost method only: at most this many units per batched pass (default DEFAULT_UNITS_PER_PASS, 32);
   * a larger batch runs in passes over whole units with a turn of the event loop between them.
   */
  unitsPerPass?: number;
  /** Ghost method only: adds the time of each phase of the step here (dp-sgd-phases.ts). */
  profiler?: DpSgdProfiler;
  /** Ghost method only: pad every pass to this many positions (`padBatch`), fixed for the run. */
  padTo?: number;
}

/**
 * Units per batched ghost pass. A pass is synchronous work; between passes the event loop runs,
 * so heartbeats and, in a simulation, the coordinator and the other institutions sharing the
 * process keep going during a step over hundreds of units.
 */
export const DEFAULT_UNITS_PER_PASS = 32;

/** Result of `privateLoraGradient`. */
export interface PrivateGradient {
  /** (sum_i clip(g_i) + noise) / (q N), in the layout of `vars`. */
  gradient: NamedTensors;
  /** Fraction of the units (sequences without `units`) whose gradient was clipped. */
  clippedFraction: number;
  /** Mean over the sequences of each one's mean loss (NaN for an empty batch; not private). */
  meanLoss: number;
}

/**
 * One DP-SGD gradient (Abadi et al. 2016, Algorithm 1, lines 4-7): per-sequence gradients,
 * each clipped to `clipNorm`, summed, plus the exact grid Gaussian N(0, (z C)^2), over q N.
 * Both methods clip and add the noise the same way: each sequence's float32 gradient clipped
 * with the certified factor and rounded to the grid h = z C 2^-16, the integers summed exactly,
 * the discrete Gaussian added to that integer sum tensor by tensor in the order of `vars`
 * (`GridClippedSum`, `privatizeGridCounts`): one sequence moves the sum by at most
 * C + sqrt(d) h / 2 in floating point, inside the accounted C + sqrt(d) h.
 */
export async function privateLoraGradient(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  o: PrivateGradientOptions,
): Promise<PrivateGradient> {
  const method = o.method ?? 'ghost';
  if (!Number.isInteger(o.dropoutSeed)) throw new RangeError(`dropoutSeed must be an integer, received ${o.dropoutSeed}`);
  if (method === 'per-example') {
    const seeds = sequences.map((_, i) => (o.dropoutSeed + i) % 2 ** 31);
    const { grads: perSequence, losses } = await perExampleLoraGrads(model, lora, vars, sequences, seeds, o.frozen);
    const layout: NamedTensors = new Map([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: new Float32Array(v.size) }]));
    const grads = o.units ? groupGrads(perSequence, layout, o.units) : perSequence;
    const { gradient, clippedFraction } = privatizeGradients(grads, layout, { clipNorm: o.clipNorm, noiseMultiplier: o.noiseMultiplier, expectedBatchSize: o.expectedBatchSize, rng: o.rng });
    return { gradient, clippedFraction, meanLoss: losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : Number.NaN };
  }
  if (method !== 'ghost') throw new RangeError(`method must be "ghost" or "per-example", received ${JSON.stringify(method)}`);
  if (!(o.noiseMultiplier >= 0)) throw new RangeError(`noiseMultiplier must be >= 0, received ${o.noiseMultiplier}`);
  if (!(o.expectedBatchSize > 0)) throw new RangeError(`expectedBatchSize must be > 0, received ${o.expectedBatchSize}`);
  const std = o.noiseMultiplier * o.clipNorm;
  const gridStep = std > 0 ? std * DEFAULT_GRID_FRACTION : undefined;
  const g = await ghostInPasses(sequences, o.units, o.unitsPerPass ?? DEFAULT_UNITS_PER_PASS, (seqs, unitOf, first) =>
    ghostClippedLoraGradSum(model, lora, vars, seqs, { clipNorm: o.clipNorm, dropoutSeed: (o.dropoutSeed + first) % 2 ** 31, clippedSum: o.clippedSum, compute: o.compute, gridStep, frozen: o.frozen, profiler: o.profiler, padTo: o.padTo, ...(unitOf ? { unitOf } : {}) }),
  );
  const gradient: NamedTensors = new Map();
  if (gridStep !== undefined) {
    const noisy = timed(o.profiler, 'noise', () => privatizeGridCounts(g.gridCounts!, { sigma: std, gridStep, rng: o.rng, divisor: o.expectedBatchSize }));
    [...g.clippedSum].forEach(([name, t], i) => gradient.set(name, { shape: t.shape, data: noisy[i]! }));
  } else {
    for (const [name, t] of g.clippedSum) gradient.set(name, { shape: t.shape, data: t.data.map((v) => v / o.expectedBatchSize) });
  }
  const clipped = g.factors.reduce((n, c) => n + (c < 1 ? 1 : 0), 0);
  return { gradient, clippedFraction: g.factors.length ? clipped / g.factors.length : 0, meanLoss: sequences.length ? g.lossSum / sequences.length : Number.NaN };
}

/** Per-sequence host gradients summed per unit (`unitSlice`: float32 sums in batch order, as the ghost path). */
function groupGrads(perSequence: readonly NamedTensors[], layout: NamedTensors, unitOf: readonly number[]): NamedTensors[] {
  const g = groupUnits(perSequence.length, unitOf);
  const out: NamedTensors[] = Array.from({ length: g.units }, () => new Map());
  for (const [name, t] of layout) {
    const size = t.data.length;
    const rows = new Float32Array(perSequence.length * size);
    perSequence.forEach((p, i) => rows.set(p.get(name)?.data ?? new Float32Array(size), i * size));
    out.forEach((m, u) => m.set(name, { shape: [...t.shape], data: unitSlice(rows, size, g.rows[u]!) }));
  }
  return out;
}

type GhostSum = Awaited<ReturnType<typeof ghostClippedLoraGradSum>>;

/**
 * The ghost clipped sum over `sequences` in passes of at most `perPass` whole units, yielding to
 * the event loop between passes. Each unit is clipped within its own pass exactly as in one pass
 * (its factor depends on its own gradient only), and the grid counts are integers summed exactly,
 * so the release and its sensitivity are those of a single pass; the float `clippedSum` (used
 * without noise) is summed in pass order.
 */
async function ghostInPasses(sequences: readonly Int32Array[], units: readonly number[] | undefined, perPass: number, pass: (seqs: Int32Array[], unitOf: number[] | undefined, firstUnit: number) => Promise<GhostSum>): Promise<GhostSum> {
  if (!Number.isInteger(perPass) || perPass < 1) throw new RangeError(`unitsPerPass must be a positive integer, received ${perPass}`);
  const grouping = groupUnits(sequences.length, units);
  if (grouping.units <= perPass) return pass([...sequences], units ? [...units] : undefined, 0);
  let total: GhostSum | undefined;
  for (let first = 0; first < grouping.units; first += perPass) {
    if (total) await yieldToEventLoop();
    const rows = grouping.rows.slice(first, first + perPass);
    const seqs = rows.flatMap((r) => [...r].map((i) => sequences[i]!));
    const unitOf = rows.flatMap((r, u) => [...r].map(() => u));
    const g = await pass(seqs, units ? unitOf : undefined, first);
    if (!total) {
      total = g;
      continue;
    }
    for (const [name, t] of g.clippedSum) addInto(total.clippedSum.get(name)!.data, t.data);
    total.gridCounts?.forEach((acc, k) => addInto(acc, g.gridCounts![k]!));
    total = { ...total, normsSq: concat(total.normsSq, g.normsSq), factors: concat(total.factors, g.factors), lossSum: total.lossSum + g.lossSum };
  }
  return total!;
}

/** acc[i] += v[i] (a loop: forEach with a closure is several times slower on large tensors). */
function addInto(acc: Float32Array | Float64Array, v: Float32Array | Float64Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + v[i]!;
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
