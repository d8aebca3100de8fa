import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, defaultLoraConfig, initBackend, initLoraAdapter, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, sha256Named, uniform01 } from '@fedlora/tensor';
import { tokenizeToSequences } from './data.js';
import { privateLoraGradient } from './dp-sgd-grads.js';
import { dpSgdParams, loraDimension, trainLocalDpSgd } from './dp-sgd.js';
import { SAMPLE_TEXT, tinyGpt2 } from './test-model.js';
import { toTensors, trainLocal } from './trainer.js';

let model: CausalLM;
let lora: LoraConfig;
let adapter: NamedTensors;
let data: Int32Array[];
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2();
  lora = defaultLoraConfig(model);
  // A non-zero B, so the gradients of A are non-zero too.
  adapter = initLoraAdapter(model, lora, seededRandomBytes('dp-a'));
  const rng = seededRandomBytes('dp-b');
  for (const [name, t] of adapter) if (name.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
  data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 12).slice(0, 6);
});
afterAll(() => model?.dispose());

const variables = (a: NamedTensors) => new Map([...a].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
const disposeAll = (vars: Map<string, tf.Variable>) => vars.forEach((v) => v.dispose());

/** The full-batch mean-loss gradient, as the non-private trainer computes it. */
function batchGradient(vars: Map<string, tf.Variable>, seqs: Int32Array[]): NamedTensors {
  const names = [...vars.keys()];
  const { inputs, targets } = toTensors(seqs, seqs[0]!.length - 1);
  const g = tf.grads((...xs: tf.Tensor[]) => crossEntropy(model.forward(inputs, { lora: loraRuntime(model, lora, new Map(names.map((n, i) => [n, xs[i]!]))) }), targets))(names.map((n) => vars.get(n)!));
  const out: NamedTensors = new Map(names.map((n, i) => [n, { shape: [...g[i]!.shape], data: g[i]!.dataSync() as Float32Array }]));
  tf.dispose([inputs, targets, ...g]);
  return out;
}

const flat = (a: NamedTensors): Float64Array => Float64Array.from([...a.values()].flatMap((t) => [...t.data]));
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const maxAbsDiff = (a: Float64Array, b: Float64Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('privateLoraGradient', () => {
  it('equals the non-private batch gradient with noise 0, a huge clip and the realised batch size', async () => {
    const vars = variables(adapter);
    const want = flat(batchGradient(vars, data));
    const got = await privateLoraGradient(model, lora, vars, data, { clipNorm: 1e9, noiseMultiplier: 0, expectedBatchSize: data.length, rng: seededRandomBytes(1), dropoutSeed: 0 });
    disposeAll(vars);
    expect(got.clippedFraction).toBe(0);
    expect(norm(want)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(flat(got.gradient), want)).toBeLessThan(1e-5 * Math.max(1, norm(want)));
  });

  it('clips each example to the bound, matching brute-force per-example gradients', async () => {
    const vars = variables(adapter);
    const perExample = data.map((s) => flat(batchGradient(vars, [s])));
    const clip = 0.5 * Math.min(...perExample.map(norm));
    const want = new Float64Array(perExample[0]!.length);
    for (const g of perExample) {
      const f = Math.min(1, clip / norm(g));
      g.forEach((x, k) => (want[k] = want[k]! + (x * f) / 4));
    }
    const got = await privateLoraGradient(model, lora, vars, data, { clipNorm: clip, noiseMultiplier: 0, expectedBatchSize: 4, rng: seededRandomBytes(1), dropoutSeed: 0 });
    const single = await privateLoraGradient(model, lora, vars, [data[0]!], { clipNorm: clip, noiseMultiplier: 0, expectedBatchSize: 1, rng: seededRandomBytes(1), dropoutSeed: 0 });
    disposeAll(vars);
    expect(got.clippedFraction).toBe(1);
    expect(maxAbsDiff(flat(got.gradient), want)).toBeLessThan(1e-5 * norm(want));
    expect(norm(flat(single.gradient))).toBeLessThanOrEqual(clip * (1 + 1e-6));
    expect(norm(flat(single.gradient))).toBeGreaterThan(clip * (1 - 1e-4));
  });

  it('adds noise of std z C / (q N) per coordinate', async () => {
    const vars = variables(adapter);
    const got = await privateLoraGradient(model, lora, vars, [], { clipNorm: 2, noiseMultiplier: 1.5, expectedBatchSize: 3, rng: seededRandomBytes('noise'), dropoutSeed: 0 });
    disposeAll(vars);
    const v = flat(got.gradient);
    const std = norm(v) / Math.sqrt(v.length);
    expect(std).toBeGreaterThan(0.95 * 1);
    expect(std).toBeLessThan(1.05 * 1);
  });
});

describe('trainLocalDpSgd', () => {
  it('takes the same step as the non-private trainer with q 1, noise 0 and a huge clip', async () => {
    const opts = { steps: 1, learningRate: 1e-2 };
    const plain = await trainLocal(model, lora, adapter, data, { ...opts, batchSize: data.length, seed: 1 });
    const dp = await trainLocalDpSgd(model, lora, adapter, data, { ...opts, samplingRate: 1, clipNorm: 1e9, noiseMultiplier: 0, rng: seededRandomBytes(2) });
    expect(dp.meanBatchSize).toBe(data.length);
    expect(maxAbsDiff(flat(dp.adapter), flat(plain.adapter))).toBeLessThan(1e-6);
  });

  it('samples each sequence with probability q (Poisson), leaves the input untouched and reports what to account', async () => {
    const before = sha256Named(adapter);
    const sizes: number[] = [];
    const q = 0.5;
    const steps = 24;
    const r = await trainLocalDpSgd(model, lora, adapter, data, { steps, samplingRate: q, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-3, rng: seededRandomBytes('poisson'), onStep: (s) => sizes.push(s.batchSize) });
    expect(sha256Named(adapter)).toBe(before);
    expect(new Set(sizes).size).toBeGreaterThan(1); // the batch size varies: Poisson, not fixed
    const mean = sizes.reduce((a, b) => a + b, 0) / steps;
    const sd = Math.sqrt((data.length * q * (1 - q)) / steps);
    expect(Math.abs(mean - q * data.length)).toBeLessThan(4 * sd);
    expect(r.meanBatchSize).toBeCloseTo(mean, 10);
    expect(r.privacy).toEqual(dpSgdParams({ samplingRate: q, clipNorm: 1, noiseMultiplier: 1, steps, dimension: loraDimension(model, lora) }));
    expect(r.privacy.mode).toBe('dp-sgd');
  });

  it('does not leak tensors across steps', async () => {
    // A call may leak AdamW's zero-initialised moment seeds (adamw.ts), but nothing per step.
    const leaked = async (steps: number) => {
      const n = tf.memory().numTensors;
      await trainLocalDpSgd(model, lora, adapter, data, { steps, samplingRate: 0.5, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-3, rng: seededRandomBytes(steps) });
      return tf.memory().numTensors - n;
    };
    const one = await leaked(1);
    expect(await leaked(4)).toBe(one);
    expect(one).toBeLessThanOrEqual(2 * adapter.size);
  });

  it('rejects a sampling rate outside (0, 1]', async () => {
    await expect(trainLocalDpSgd(model, lora, adapter, data, { steps: 1, samplingRate: 0, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-3, rng: seededRandomBytes(5) })).rejects.toThrow(/samplingRate must be in \(0, 1\], received 0/);
  });
});

describe('dpSgdParams', () => {
  it('accounts the multiplier left after rounding to the grid: z C / (C + sqrt(d) z C 2^-16)', () => {
    const p = dpSgdParams({ samplingRate: 0.01, clipNorm: 2, noiseMultiplier: 1, steps: 10, dimension: 24_576 });
    expect(p).toMatchObject({ mode: 'dp-sgd', clipNorm: 2, samplingRate: 0.01, steps: 10 });
    expect(p.noiseMultiplier).toBeCloseTo(1 / (1 + Math.sqrt(24_576) / 65_536), 12);
    expect(p.noiseMultiplier).toBeLessThan(1);
  });

  it('counts r (dIn + dOut) trainable values per adapted layer', () => {
    // tiny GPT-2: 2 layers of c_attn (32 -> 96) and attn.c_proj (32 -> 32), r 8.
    expect(loraDimension(model, lora)).toBe(2 * 8 * (32 + 96 + 32 + 32));
    expect(loraDimension(model, lora)).toBe([...adapter.values()].reduce((n, t) => n + t.data.length, 0));
  });
});
