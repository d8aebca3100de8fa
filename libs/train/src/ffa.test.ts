import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, defaultLoraConfig, initBackend, initLoraAdapter, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { tokenizeToSequences } from './data.js';
import { privateLoraGradient } from './dp-sgd-grads.js';
import { dpSgdParams, loraDimension, trainLocalDpSgd } from './dp-sgd.js';
import { SAMPLE_TEXT, tinyGpt2 } from './test-model.js';
import { toTensors, trainLocal } from './trainer.js';

// FFA-LoRA (Sun et al. 2024): A frozen at its initialisation, only B trained.
let model: CausalLM;
let ffa: LoraConfig;
let adapter: NamedTensors;
let data: Int32Array[];
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2();
  ffa = { ...defaultLoraConfig(model), variant: 'ffa' };
  adapter = initLoraAdapter(model, ffa, seededRandomBytes('ffa-a'));
  const rng = seededRandomBytes('ffa-b');
  for (const [name, t] of adapter) if (name.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
  data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 12).slice(0, 6);
});
afterAll(() => model?.dispose());

const isB = (name: string) => name.includes('lora_B');
const bytes = (t: { data: Float32Array }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const flat = (a: NamedTensors): Float64Array => Float64Array.from([...a.values()].flatMap((t) => [...t.data]));
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

function expectAUnchanged(out: NamedTensors): void {
  expect([...out.keys()]).toEqual([...adapter.keys()]);
  for (const [name, t] of adapter) if (!isB(name)) expect(bytes(out.get(name)!).equals(bytes(t))).toBe(true);
  expect([...adapter].filter(([n]) => isB(n)).some(([n, t]) => !bytes(out.get(n)!).equals(bytes(t)))).toBe(true);
}

describe('FFA-LoRA training (lora.variant ffa)', () => {
  it('trainLocal trains B and returns A bit for bit', async () => {
    const r = await trainLocal(model, ffa, adapter, data, { steps: 2, batchSize: 2, learningRate: 1e-2, seed: 1 });
    expectAUnchanged(r.adapter);
    expect([...r.state.optimizer.m.keys()].every(isB)).toBe(true); // A has no optimizer state: it is not a variable
  });

  it('trainLocalDpSgd trains B, returns A bit for bit, and accounts only the B values', async () => {
    const r = await trainLocalDpSgd(model, ffa, adapter, data, { steps: 2, samplingRate: 0.5, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-2, rng: seededRandomBytes(3) });
    expectAUnchanged(r.adapter);
    const bValues = [...adapter].filter(([n]) => isB(n)).reduce((s, [, t]) => s + t.data.length, 0);
    expect(loraDimension(model, ffa)).toBe(bValues);
    expect(loraDimension(model, ffa)).toBe(2 * 8 * (96 + 32)); // r dOut per adapted layer of the tiny GPT-2
    expect(r.privacy).toEqual(dpSgdParams({ samplingRate: 0.5, clipNorm: 1, noiseMultiplier: 1, steps: 2, dimension: bValues }));
  });

  it('clips each example\'s B gradient (A frozen) to the bound: ghost, host and per-example agree with brute force', async () => {
    const frozen = new Map([...adapter].filter(([n]) => !isB(n)).map(([n, t]) => [n, tf.tensor(t.data, t.shape)]));
    const vars = new Map([...adapter].filter(([n]) => isB(n)).map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
    const names = [...vars.keys()];
    // Brute force: one gradient per sequence with respect to the B matrices only.
    const perExample = data.map((s) => {
      const { inputs, targets } = toTensors([s], s.length - 1);
      const g = tf.grads((...xs: tf.Tensor[]) => crossEntropy(model.forward(inputs, { lora: loraRuntime(model, ffa, new Map([...frozen, ...names.map((n, i) => [n, xs[i]!] as const)])) }), targets))(names.map((n) => vars.get(n)!));
      const v = Float64Array.from(g.flatMap((t) => [...(t.dataSync() as Float32Array)]));
      tf.dispose([inputs, targets, ...g]);
      return v;
    });
    const clip = 0.5 * Math.min(...perExample.map(norm));
    const want = new Float64Array(perExample[0]!.length);
    for (const g of perExample) g.forEach((v, i) => (want[i] += (v * Math.min(1, clip / norm(g))) / data.length));
    for (const opts of [{ method: 'ghost' as const }, { method: 'ghost' as const, compute: 'host' as const }, { method: 'per-example' as const }]) {
      const got = await privateLoraGradient(model, ffa, vars, data, { clipNorm: clip, noiseMultiplier: 0, expectedBatchSize: data.length, rng: seededRandomBytes(1), dropoutSeed: 0, frozen, ...opts });
      expect([...got.gradient.keys()]).toEqual(names); // no gradient, clip or noise for A
      expect(got.clippedFraction).toBe(1);
      const g = flat(got.gradient);
      expect(g.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i]!)), 0)).toBeLessThan(1e-5 * Math.max(1, norm(want)));
    }
    vars.forEach((v) => v.dispose());
    frozen.forEach((t) => t.dispose());
  });
});
