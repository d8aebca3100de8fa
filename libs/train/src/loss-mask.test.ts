/**
 * Completion-only loss: masked targets (prompt, padding) contribute nothing to the loss or to any
 * gradient, in the plain trainer, in DP-SGD's per-example reference and in its ghost path.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, defaultLoraConfig, initBackend, initLoraAdapter, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { ghostClippedLoraGradSum } from './dp-sgd-ghost.js';
import { perExampleLoraGrads } from './dp-sgd-grads.js';
import { maskedId, tokenIds, trainedTargets, withLossMask } from './loss-mask.js';
import { evaluate, toTensors, trainLocal } from './trainer.js';
import { tinyGpt2 } from './test-model.js';

let model: CausalLM;
let lora: LoraConfig;
let adapter: NamedTensors;

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2(3);
  lora = defaultLoraConfig(model);
  adapter = initLoraAdapter(model, lora, seededRandomBytes('mask-a'));
  const rng = seededRandomBytes('mask-b');
  for (const [n, t] of adapter) if (n.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
});

const ids = [5, 17, 42, 8, 99, 3, 61, 7, 12, 200, 150, 1];
/** Prompt = positions 0..4, completion = 5..8, padding = 9..11 (masked). */
const train = ids.map((_, i) => i >= 5 && i <= 8);

function vars(): Map<string, tf.Variable> {
  return new Map([...adapter].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
}

function maxDiff(a: NamedTensors, b: NamedTensors): number {
  let m = 0;
  for (const [n, t] of a) t.data.forEach((v, i) => (m = Math.max(m, Math.abs(v - b.get(n)!.data[i]!))));
  return m;
}

function norm(a: NamedTensors): number {
  let s = 0;
  for (const t of a.values()) for (const v of t.data) s += v * v;
  return Math.sqrt(s);
}

describe('loss masks inside sequences', () => {
  it('encode masked targets as -id - 1 and decode them back', () => {
    const s = withLossMask(ids, train);
    expect(Array.from(tokenIds(s))).toEqual(ids);
    expect(s[1]).toBe(maskedId(17));
    expect(s[0]).toBe(5); // position 0 is never a target: stored as is
    expect(trainedTargets(s)).toBe(4);
    const t = toTensors([s], ids.length - 1);
    expect(Array.from(t.weights!.dataSync())).toEqual(train.slice(1).map((x) => (x ? 1 : 0)));
    expect(Array.from(t.inputs.dataSync())).toEqual(ids.slice(0, -1));
    expect(t.targetCount).toBe(4);
    tf.dispose([t.inputs, t.targets, t.weights!]);
  });

  it('the masked loss equals the mean cross-entropy of the completion tokens alone', async () => {
    const s = withLossMask(ids, train);
    const masked = await evaluate(model, lora, adapter, [s]);
    const rt = loraRuntime(model, lora, adapter);
    const logits = model.forward(tf.tensor2d([ids.slice(0, -1)], [1, ids.length - 1], 'int32'), { lora: rt });
    const byHand = tf.tidy(() => crossEntropy(tf.slice(logits, [4, 0], [4, -1]) as tf.Tensor2D, tf.tensor1d(ids.slice(5, 9), 'int32')));
    expect(masked.tokens).toBe(4);
    expect(masked.loss).toBeCloseTo((await byHand.data())[0]!, 5);
    tf.dispose([logits, byHand]);
  });

  it('masked tokens give zero gradient: changing masked padding changes no per-example or ghost gradient', async () => {
    const a = withLossMask(ids, train);
    const other = [...ids];
    other[10] = 77; // padding: an input only to masked positions, and a masked target
    other[11] = 250;
    const b = withLossMask(other, train);
    const v = vars();
    try {
      const pe = await perExampleLoraGrads(model, lora, v, [a, b], [1, 1]);
      expect(norm(pe.grads[0]!)).toBeGreaterThan(1e-4);
      expect(maxDiff(pe.grads[0]!, pe.grads[1]!)).toBeLessThan(1e-6);
      expect(pe.losses[0]).toBeCloseTo(pe.losses[1]!, 6);
      // Ghost clipping (one batched pass): the same clipped sum for [a] twice and [a, b], and per-example norms equal.
      const ghost = await ghostClippedLoraGradSum(model, lora, v, [a, b], { clipNorm: 1e6, dropoutSeed: 1 });
      expect(ghost.normsSq[0]).toBeCloseTo(ghost.normsSq[1]!, 8);
      const sum = new Map([...pe.grads[0]!].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x, i) => x + pe.grads[1]!.get(n)!.data[i]!) }]));
      expect(maxDiff(ghost.clippedSum, sum)).toBeLessThan(1e-5);
      // And the mask matters: unmasked, the padding is trained on and the gradient differs.
      const plain = await perExampleLoraGrads(model, lora, v, [Int32Array.from(ids)], [1]);
      expect(maxDiff(plain.grads[0]!, pe.grads[0]!)).toBeGreaterThan(1e-4);
    } finally {
      for (const x of v.values()) x.dispose();
    }
  }, 300_000);

  it('trainLocal trains on the completion tokens: their loss falls and only they are counted', async () => {
    const s = withLossMask(ids, train);
    const before = await evaluate(model, lora, adapter, [s]);
    const r = await trainLocal(model, lora, adapter, [s, s], { steps: 12, batchSize: 2, learningRate: 0.02, seed: 1 });
    const after = await evaluate(model, lora, r.adapter, [s]);
    expect(r.tokens).toBe(12 * 2 * 4); // only trained targets are counted
    expect(after.loss).toBeLessThan(before.loss - 0.1);
  }, 300_000);
});
