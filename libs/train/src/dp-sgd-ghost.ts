/**
 * Per-example clipping for LoRA from ONE batched forward and backward pass (ghost clipping: Li,
 * Tramer, Liang, Hashimoto 2022, "Large Language Models Can Be Strong Differentially Private
 * Learners", Section 4; book-keeping: Bu et al. 2023, "Differentially Private Optimization on
 * Large Model at Small Cost", Algorithm 1). LoRA layers are linear in A and B, so example i's
 * gradients are dB_i = s G_i^T (X_i A^T) and dA_i = s (G_i B)^T X_i, where X_i and G_i are the rows
 * of the layer's input and output gradient that belong to example i (`loraLayerTraces`). By
 * default (`compute: 'device'`) the device forms these small per-example factor gradients for the
 * whole batch in two batched matmuls per layer (for LoRA, r (dIn + dOut) values per example and
 * layer: cheaper than the Gram ("ghost norm") form <G_i G_i^T, H_i H_i^T> whenever T > r) and the
 * host takes them as float32, computes the squared norms in float64, the clip factors and the
 * clipped sum. `compute: 'host'` instead forms norms and the sum from X, G, H, P in float64 with
 * libs/privacy's `loraPerExampleGradNormsSq` and `loraClippedGradSums` (picking the cheaper form
 * per factor, `gramProductNormSq`); `clippedSum: 'reweighted-backward'` forms the sum by a second
 * backward pass of the loss re-weighted by the clip factors. None runs a backward pass per example.
 *
 * Precision (issue 4): with the defaults (`traces` on the `device`) and a noise grid (`gridStep`)
 * the sensitivity holds in floating point, not only in real numbers. Example i's downloaded
 * float32 gradient g_i depends on example i alone (given kernels that compute each row of a
 * batched op from that row, in an order that does not depend on the batch size, and a padded width
 * that does not depend on the batch either: `padTo`, which trainLocalDpSgd fixes for the run. True
 * of the wasm kernels; measured NOT to hold on the native backend, where OpenBLAS's products round
 * a row differently at some batch sizes (e.g. 8 vs 4 sequences), moving other examples' g_j by
 * float32 rounding: an assumption stated here, open); its clip factor is certified
 * (`certifiedClipFactor`: float64 norm, margin (3 d + 16) 2^-53) and c_i g_i is rounded to the grid
 * before the exact integer sum (`GridClippedSum`), so neighbouring batches differ by one integer
 * vector of norm <= C + sqrt(d) h / 2, within the C + sqrt(d) h that `dpSgdParams` accounts (proof
 * in libs/privacy grid-clipped-sum.ts). The float32 rounding of the batched forward and backward
 * passes only changes which g_i is clipped, not the bound. The other two variants sum many
 * examples in floating point before rounding to the grid, so their bound holds up to that
 * rounding (about 1e-16 relative on the host, 1e-7 for the re-weighted pass): they are kept for
 * comparison and benchmarks.
 *
 * Privacy units (`unitOf`): when a unit (a document, a patient) spans several rows, its gradient
 * is the sum of its rows' gradients and the unit, not the row, is clipped (ghost-units.ts): for a
 * LoRA layer the unit is one example whose tokens are its rows' tokens. On the device path unit
 * u's float32 gradient is the float32 sum of its rows' gradients in batch order, a function of
 * unit u's rows alone, so the argument above holds with "example" read as "unit".
 *
 * Examples stay separate in the batch: attention is causal within each row of ids and nothing
 * mixes rows. Sequences of unequal length are right-padded; the loss ignores padded targets and
 * padded positions come after every real one, so their output gradients are exactly zero and
 * they add nothing to any gradient or norm.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { groupRowBlocks, groupUnits, unitSlice, type UnitGrouping } from './ghost-units.js';
import { certifiedClipFactor, GridClippedSum, jsGridSumKernels, loraClippedGradSums, loraPerExampleGradNormsSq, type LoraNormInputs } from '@fedlora/privacy';
import { nativeGridSumKernels } from '@fedlora/native-cpu';
import {
  crossEntropy,
  crossEntropySum,
  disposeLoraTraces,
  loraLayerTraces,
  loraRuntime,
  peftName,
  valueAndGradsFrugal,
  type CausalLM,
  type LoraConfig,
  type LoraLayerTrace,
  type LoraRuntime,
} from '@fedlora/model';
import { hasLossMask, tokenIdOf, trainedTargets } from './loss-mask.js';
import { timed, timedAsync, type DpSgdProfiler } from './dp-sgd-phases.js';

/**
 * How the clipped sum is formed once the clip factors are known: `traces` from the recorded
 * inputs and output gradients (no second pass), or `reweighted-backward`, a second forward and
 * backward pass of sum_i c_i L_i (Li et al. 2022's ghost clipping proper).
 */
export type ClippedSumMethod = 'traces' | 'reweighted-backward';

/** Where norms and the clipped sum are computed from the traces: tfjs (float32) or the host (float64, libs/privacy). */
export type GhostCompute = 'device' | 'host';

/** Options of `ghostClippedLoraGradSum`. */
export interface GhostClipOptions {
  clipNorm: number;
  /** Seed of the batch's LoRA dropout masks (used by every pass of this step). */
  dropoutSeed: number;
  /** Default `traces`. */
  clippedSum?: ClippedSumMethod;
  /** Default `device`. */
  compute?: GhostCompute;
  /**
   * The noise grid step h (DP-SGD with noise): the result then also holds the clipped sum as
   * integer grid counts (`gridCounts`). With `traces` on the `device` each example's clipped
   * gradient is rounded to the grid before summing, the sum exact (`GridClippedSum`).
   */
  gridStep?: number;
  /**
   * The privacy unit of each sequence (`unitOf[i]` for `sequences[i]`, units numbered densely
   * 0..U-1): each unit's gradient, summed over its sequences, is clipped as one. Default: every
   * sequence is its own unit.
   */
  unitOf?: ArrayLike<number>;
  /**
   * Adapter tensors that are not trained (FFA-LoRA's A, Sun et al. 2024): they take part in the
   * forward pass, but each unit's norm, clip and sum cover only the tensors of `vars`.
   */
  frozen?: ReadonlyMap<string, tf.Tensor>;
  /** Adds the time of each phase (forward/backward, per-example gradients, clipped grid sum) here. */
  profiler?: DpSgdProfiler;
  /** Pad every batch to this many positions (>= the longest sequence's targets; `padBatch`). */
  padTo?: number;
}

/** Result of `ghostClippedLoraGradSum`. */
export interface GhostClipResult {
  /** sum_i c_i g_i over the batch, unnoised, in the order and shapes of `vars`. */
  clippedSum: NamedTensors;
  /** ||g_u||^2 of each unit's LoRA gradient (all layers); a unit is a sequence unless `unitOf` is given. */
  normsSq: Float64Array;
  /** c_u = min(1, C / ||g_u||), per unit. */
  factors: Float64Array;
  /** sum_i L_i, each example's mean next-token loss (not private: local diagnostics). */
  lossSum: number;
  /** With `gridStep`: the clipped sum as integers K on the grid (clippedSum = K h), in the order of `vars`. */
  gridCounts?: Float64Array[];
}

/** The clipped grid sum's loops: C when the native addon is built (the same bits as the JS loops, tested). */
const GRID_KERNELS = nativeGridSumKernels() ?? jsGridSumKernels;

/**
 * A right-padded batch: ids [B, T], targets [B*T], and each sequence's number of targets; T is the
 * longest sequence's targets, or `padTo` (a length fixed for the whole run, so that T, and with it
 * the float32 rounding of every example's gradient, does not depend on which examples share the
 * batch: the rounding of reductions over T changes with T on both the wasm and native kernels). When
 * any sequence is shorter than T, or targets are masked (loss-mask.ts, decoded here), `tokenWeights`
 * [B*T] holds 1 / (example's trained targets) at each trained target and 0 elsewhere (padding,
 * prompt), so the weighted sum of token losses is sum_i L_i with L_i example i's mean over its own
 * trained targets, in one fused loss (a loss per example cost ~2.8x the ghost pass's CPU time for 32
 * sequences of unequal length on fedlora-tiny).
 */
export function padBatch(sequences: readonly Int32Array[], padTo?: number): { inputs: tf.Tensor2D; targets: tf.Tensor1D; lengths: number[]; seqLen: number; tokenWeights?: Float32Array } {
  const lengths = sequences.map((s, i) => {
    if (s.length < 2) throw new RangeError(`every sequence needs at least 2 tokens (an input and a target), sequence ${i} holds ${s.length}`);
    return s.length - 1;
  });
  const longest = Math.max(...lengths);
  if (padTo !== undefined && !(Number.isInteger(padTo) && padTo >= longest)) throw new RangeError(`padTo must be an integer >= the longest sequence's ${longest} targets, received ${padTo}`);
  const T = padTo ?? longest;
  const inp = new Int32Array(sequences.length * T);
  const tgt = new Int32Array(sequences.length * T);
  const masked = hasLossMask(sequences);
  // Padded rows weigh their targets too (1 / length, 0 on padding): one fused loss instead of one per example.
  const padded = lengths.some((l) => l !== T);
  const w = masked || padded ? new Float32Array(sequences.length * T) : undefined;
  sequences.forEach((s, i) => {
    if (!masked) {
      inp.set(s.subarray(0, lengths[i]), i * T);
      tgt.set(s.subarray(1), i * T);
      if (w) w.fill(1 / lengths[i]!, i * T, i * T + lengths[i]!);
      return;
    }
    const n = trainedTargets(s);
    if (n === 0) throw new RangeError(`sequence ${i} has every target masked out; drop it before training`);
    for (let j = 0; j < lengths[i]!; j++) {
      inp[i * T + j] = tokenIdOf(s[j]!);
      const v = s[j + 1]!;
      tgt[i * T + j] = v < 0 ? 0 : v;
      w![i * T + j] = v < 0 ? 0 : 1 / n;
    }
  });
  return { inputs: tf.tensor2d(inp, [sequences.length, T], 'int32'), targets: tf.tensor1d(tgt, 'int32'), lengths, seqLen: T, ...(w ? { tokenWeights: w } : {}) };
}

/**
 * sum_i w_i L_i with L_i example i's mean loss over its own targets (padding excluded; with
 * `tokenWeights` from `padBatch`, over its trained targets). Equal lengths and unit weights take
 * one fused loss over the whole batch.
 */
export function weightedExampleLoss(logits: tf.Tensor2D, targets: tf.Tensor1D, lengths: readonly number[], seqLen: number, weights?: ArrayLike<number>, tokenWeights?: Float32Array): tf.Scalar {
  return tf.tidy(() => {
    if (tokenWeights) {
      const tw = weights ? tokenWeights.map((v, k) => v * weights[Math.floor(k / seqLen)]!) : tokenWeights;
      return crossEntropySum(logits, targets, tf.tensor1d(tw, 'float32'));
    }
    if (!weights && lengths.every((l) => l === seqLen)) return tf.div(crossEntropySum(logits, targets), seqLen) as tf.Scalar;
    const terms: tf.Scalar[] = [];
    lengths.forEach((len, i) => {
      const w = weights ? weights[i]! : 1;
      if (w === 0) return;
      const l = tf.slice(logits, [i * seqLen, 0], [len, logits.shape[1]]) as tf.Tensor2D;
      const t = tf.slice(targets, [i * seqLen], [len]) as tf.Tensor1D;
      terms.push(tf.mul(crossEntropy(l, t), w) as tf.Scalar);
    });
    return (terms.length ? tf.addN(terms) : tf.mul(tf.sum(logits), 0)) as tf.Scalar;
  });
}

/**
 * One DP-SGD step's clipped gradient sum (Abadi et al. 2016, Algorithm 1, lines 4-6, before the
 * noise) for the sampled `sequences`, with every example's LoRA gradient clipped to `clipNorm`.
 */
export async function ghostClippedLoraGradSum(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  o: GhostClipOptions,
): Promise<GhostClipResult> {
  const method = o.clippedSum ?? 'traces';
  if (method !== 'traces' && method !== 'reweighted-backward') throw new RangeError(`clippedSum must be "traces" or "reweighted-backward", received ${JSON.stringify(method)}`);
  if (!(o.clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${o.clipNorm}`);
  if (o.gridStep !== undefined && !(o.gridStep > 0 && Number.isFinite(o.gridStep))) throw new RangeError(`gridStep must be a finite number > 0, received ${o.gridStep}`);
  if (sequences.length === 0) {
    const zero: NamedTensors = new Map([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: new Float32Array(v.size) }]));
    const counts = o.gridStep !== undefined ? { gridCounts: [...vars.values()].map((v) => new Float64Array(v.size)) } : {};
    return { clippedSum: zero, normsSq: new Float64Array(0), factors: new Float64Array(0), lossSum: 0, ...counts };
  }
  const compute = o.compute ?? 'device';
  if (compute !== 'device' && compute !== 'host') throw new RangeError(`compute must be "device" or "host", received ${JSON.stringify(compute)}`);
  const units = groupUnits(sequences.length, o.unitOf);
  const dimension = [...vars.values()].reduce((n, v) => n + v.size, 0);
  const frozen = o.frozen ?? new Map<string, tf.Tensor>();
  const rt = loraRuntime(model, lora, new Map<string, tf.Tensor>([...frozen, ...vars]));
  const batch = padBatch(sequences, o.padTo);
  const fwd = { training: true, seed: o.dropoutSeed };
  try {
    const traces = timed(o.profiler, 'forwardBackward', () =>
      loraLayerTraces(model, batch.inputs, rt, (logits) => weightedExampleLoss(logits, batch.targets, batch.lengths, batch.seqLen, undefined, batch.tokenWeights), fwd),
    );
    let lossSum: number;
    let normsSq: Float64Array;
    let factors: Float64Array;
    let clippedSum: NamedTensors | undefined;
    let gridCounts: Float64Array[] | undefined;
    try {
      lossSum = (await timedAsync(o.profiler, 'forwardBackward', () => traces.loss.data()))[0]!;
      if (compute === 'host') {
        const host = await timedAsync(o.profiler, 'perExampleGrads', () => normInputs(rt, traces.layers, batch.seqLen, units));
        const t = timed(o.profiler, 'clipGridSum', () => {
          const sq = hostNormsSq(host, units.units, vars);
          checkFinite(sq);
          const f = Float64Array.from(sq, (n) => certifiedClipFactor(n, dimension, o.clipNorm));
          return { sq, f, sum: method === 'traces' ? hostClippedSum(vars, host, f) : undefined };
        });
        ({ sq: normsSq, f: factors, sum: clippedSum } = t);
      } else {
        const perExample = await timedAsync(o.profiler, 'perExampleGrads', () => devicePerExampleGrads(rt, traces.layers, sequences.length, batch.seqLen, vars));
        const r = timed(o.profiler, 'clipGridSum', () => sumPerUnit(vars, perExample, units, o.clipNorm, method === 'traces' ? o.gridStep : undefined));
        ({ normsSq, factors } = r);
        if (method === 'traces') ({ clippedSum, gridCounts } = r);
      }
    } finally {
      disposeLoraTraces(traces);
    }
    clippedSum ??= await sumByReweightedBackward(model, lora, vars, frozen, batch, Float64Array.from(sequences, (_, i) => factors[o.unitOf ? o.unitOf[i]! : i]!), fwd);
    if (o.gridStep !== undefined && !gridCounts) gridCounts = [...clippedSum.values()].map((t) => Float64Array.from(t.data, (v) => Math.round(v / o.gridStep!)));
    return { clippedSum, normsSq, factors, lossSum, ...(gridCounts ? { gridCounts } : {}) };
  } finally {
    tf.dispose([batch.inputs, batch.targets]);
  }
}

function checkFinite(normsSq: Float64Array): void {
  normsSq.forEach((n, i) => {
    if (!Number.isFinite(n)) throw new RangeError(`unit ${i} has a non-finite gradient (squared norm ${n}); lower the learning rate or check the data`);
  });
}

/**
 * Each example's LoRA gradient on the device, per layer in two batched matmuls: dB_i = s G_i^T H_i
 * ([B, dOut, r]) and dA_i = s P_i^T X_i ([B, r, dIn]), downloaded as float32 (B r (dIn + dOut)
 * values per layer, the size of B LoRA gradients). Keyed by PEFT tensor name.
 */
async function devicePerExampleGrads(
  rt: LoraRuntime,
  traces: Map<string, LoraLayerTrace>,
  batch: number,
  seqLen: number,
  vars: ReadonlyMap<string, tf.Variable>,
): Promise<Map<string, Float32Array>> {
  const device = tf.tidy(() => {
    const out: Record<string, tf.Tensor> = {}; // a plain object: tidy keeps the tensors of objects, not of Maps
    for (const [path, { input, outputGrad }] of traces) {
      const { a, b } = rt.modules.get(path)!;
      const nameA = peftName(path, 'A');
      const nameB = peftName(path, 'B');
      // Only the trained tensors (FFA-LoRA: B alone) get per-example gradients.
      if (vars.has(nameB)) {
        const h = tf.reshape(tf.matMul(input, a, false, true), [batch, seqLen, a.shape[0]]);
        out[nameB] = tf.mul(tf.matMul(tf.reshape(outputGrad, [batch, seqLen, b.shape[0]]), h, true, false), rt.scale); // [B, dOut, r]
      }
      if (vars.has(nameA)) {
        const p = tf.reshape(tf.matMul(outputGrad, b), [batch, seqLen, a.shape[0]]);
        out[nameA] = tf.mul(tf.matMul(p, tf.reshape(input, [batch, seqLen, a.shape[1]]), true, false), rt.scale); // [B, r, dIn]
      }
    }
    return out;
  });
  try {
    const host = new Map<string, Float32Array>();
    for (const [name, t] of Object.entries(device)) host.set(name, (await t.data()) as Float32Array);
    return host;
  } finally {
    tf.dispose(Object.values(device));
  }
}

/**
 * Norms, certified clip factors and the clipped sum from the per-example gradients, on the host,
 * per unit (a unit's gradient: its rows' float32 gradients summed in float32, `unitSlice`).
 * With `gridStep`, each clipped gradient is rounded to the grid and the integers summed exactly
 * (`GridClippedSum`: one example moves the sum by at most C + sqrt(d) h / 2, a bound that holds
 * in floating point); without, the clipped gradients are summed in float64.
 */
function sumPerUnit(
  vars: ReadonlyMap<string, tf.Variable>,
  perExample: Map<string, Float32Array>,
  units: UnitGrouping,
  clipNorm: number,
  gridStep: number | undefined,
): { normsSq: Float64Array; factors: Float64Array; clippedSum: NamedTensors; gridCounts?: Float64Array[] } {
  const names = [...vars.keys()];
  const sizes = names.map((n) => vars.get(n)!.size);
  const flat = names.map((n) => {
    const data = perExample.get(n);
    if (!data) throw new Error(`ghost clipping: no LoRA layer produced the gradient of "${n}"`);
    return data;
  });
  const batch = units.units;
  const clippedSum: NamedTensors = new Map();
  if (gridStep !== undefined) {
    // Units as rows of one array per tensor: the per-example arrays themselves when each unit is one
    // sequence in batch order, else each unit's float32 sum of its rows (unitSlice), row u = unit u.
    const identity = units.maxRows === 1 && units.rows.every((r, u) => r[0] === u) && flat.every((d, t) => d.length === batch * sizes[t]!);
    const rows = identity ? flat : flat.map((data, t) => packUnits(data, sizes[t]!, units));
    const sum = new GridClippedSum(sizes, { clipNorm, gridStep });
    const r = sum.addRows(rows, batch, GRID_KERNELS);
    names.forEach((n, t) => clippedSum.set(n, { shape: [...vars.get(n)!.shape], data: scaled(sum.counts[t]!, gridStep) }));
    return { normsSq: r.normsSq, factors: r.factors, clippedSum, gridCounts: sum.counts };
  }
  const example = (u: number) => flat.map((data, t) => unitSlice(data, sizes[t]!, units.rows[u]!));
  const normsSq = new Float64Array(batch);
  const factors = new Float64Array(batch);
  const dimension = sizes.reduce((a, b) => a + b, 0);
  const sums = sizes.map((n) => new Float64Array(n));
  for (let i = 0; i < batch; i++) {
    const parts = example(i);
    let sq = 0;
    for (const p of parts) for (let k = 0; k < p.length; k++) sq += p[k]! * p[k]!;
    normsSq[i] = sq;
    checkFinite(normsSq.subarray(i, i + 1));
    const c = (factors[i] = certifiedClipFactor(sq, dimension, clipNorm));
    parts.forEach((p, t) => {
      const acc = sums[t]!;
      for (let k = 0; k < p.length; k++) acc[k] = acc[k]! + c * p[k]!;
    });
  }
  names.forEach((n, t) => clippedSum.set(n, { shape: [...vars.get(n)!.shape], data: Float32Array.from(sums[t]!) }));
  return { normsSq, factors, clippedSum };
}

/** K h as float32 (a loop: `Float32Array.from` with a callback costs ~10x more on the 442k values of GPT-2 small). */
function scaled(counts: Float64Array, h: number): Float32Array {
  const out = new Float32Array(counts.length);
  for (let i = 0; i < counts.length; i++) out[i] = counts[i]! * h;
  return out;
}

/** Unit u's gradient (`unitSlice`) as row u of one [U, size] array. */
function packUnits(perRow: Float32Array, size: number, units: UnitGrouping): Float32Array {
  const out = new Float32Array(units.units * size);
  units.rows.forEach((rows, u) => out.set(unitSlice(perRow, size, rows), u * size));
  return out;
}

/** Each unit's squared gradient norm over the trained tensors (`vars`: B only with FFA-LoRA). */
function hostNormsSq(layers: Map<string, LoraNormInputs>, batch: number, vars: ReadonlyMap<string, tf.Variable>): Float64Array {
  const normsSq = new Float64Array(batch);
  for (const [path, x] of layers) {
    const { a, b } = loraPerExampleGradNormsSq(x);
    const withA = vars.has(peftName(path, 'A'));
    const withB = vars.has(peftName(path, 'B'));
    for (let i = 0; i < batch; i++) normsSq[i] = normsSq[i]! + (withA ? a[i]! : 0) + (withB ? b[i]! : 0);
  }
  return normsSq;
}

/**
 * Host copies of each layer's X, G, A, B and of H = X A^T, P = G B (formed on the device), rows
 * grouped by unit (`groupRowBlocks`: each unit one example of maxRows * T tokens).
 */
async function normInputs(rt: LoraRuntime, traces: Map<string, LoraLayerTrace>, seqLen: number, units: UnitGrouping): Promise<Map<string, LoraNormInputs>> {
  const perRow = units.maxRows === 1 && units.rows.every((r, u) => r[0] === u);
  const group = (data: Float32Array, width: number) => (perRow ? data : groupRowBlocks(data, width, seqLen, units));
  const out = new Map<string, LoraNormInputs>();
  for (const [path, { input, outputGrad }] of traces) {
    const { a, b } = rt.modules.get(path)!;
    const [h, p] = tf.tidy(() => [tf.matMul(input, a, false, true), tf.matMul(outputGrad, b)]);
    const host = await Promise.all([input, outputGrad, a, b, h!, p!].map(async (t) => (await t.data()) as Float32Array));
    tf.dispose([h!, p!]);
    const rank = a.shape[0];
    out.set(path, {
      inputs: group(host[0]!, a.shape[1]),
      outputGrads: group(host[1]!, b.shape[0]),
      a: host[2]!,
      b: host[3]!,
      hidden: group(host[4]!, rank),
      hiddenGrad: group(host[5]!, rank),
      batch: units.units,
      seqLen: seqLen * units.maxRows,
      dIn: a.shape[1],
      dOut: b.shape[0],
      rank: a.shape[0],
      scaling: rt.scale,
    });
  }
  return out;
}

function hostClippedSum(vars: ReadonlyMap<string, tf.Variable>, layers: Map<string, LoraNormInputs>, factors: Float64Array): NamedTensors {
  const sums = new Map<string, Float32Array>();
  for (const [path, x] of layers) {
    const { dA, dB } = loraClippedGradSums(x, factors);
    sums.set(peftName(path, 'A'), dA);
    sums.set(peftName(path, 'B'), dB);
  }
  return inVarOrder(vars, sums);
}

/** The sums in the order and shapes of `vars` (the noise is drawn tensor by tensor in that order). */
function inVarOrder(vars: ReadonlyMap<string, tf.Variable>, sums: Map<string, Float32Array>): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, v] of vars) {
    const data = sums.get(name);
    if (!data) throw new Error(`ghost clipping: no LoRA layer produced the gradient of "${name}"`);
    out.set(name, { shape: [...v.shape], data });
  }
  return out;
}

async function sumByReweightedBackward(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  frozen: ReadonlyMap<string, tf.Tensor>,
  batch: { inputs: tf.Tensor2D; targets: tf.Tensor1D; lengths: number[]; seqLen: number; tokenWeights?: Float32Array },
  factors: Float64Array,
  fwd: { training: boolean; seed: number },
): Promise<NamedTensors> {
  const names = [...vars.keys()];
  const { value, grads } = valueAndGradsFrugal((...xs: tf.Tensor[]) => {
    const rt = loraRuntime(model, lora, new Map([...frozen, ...names.map((n, k) => [n, xs[k]!] as const)]));
    return weightedExampleLoss(model.forward(batch.inputs, { ...fwd, lora: rt }), batch.targets, batch.lengths, batch.seqLen, factors, batch.tokenWeights);
  })(names.map((n) => vars.get(n)!));
  const out: NamedTensors = new Map();
  for (let k = 0; k < names.length; k++) out.set(names[k]!, { shape: [...grads[k]!.shape], data: (await grads[k]!.data()) as Float32Array });
  tf.dispose([value, ...grads]);
  return out;
}
