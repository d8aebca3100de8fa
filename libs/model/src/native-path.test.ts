import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { loadNativeCpu, registerNativeKernels, unregisterNativeKernels } from '@fedlora/native-cpu';
import { seededRandomBytes, uniform01, type NamedTensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { valueAndGradsFrugal } from './backprop.js';
import type { CausalLM } from './causal-lm.js';
import { loadModel } from './load-model.js';
import { crossEntropy } from './loss.js';
import { defaultLoraConfig, initLoraAdapter, loraRuntime, type LoraConfig } from './lora.js';
import { writeTinyModel } from './testing.js';

const native = loadNativeCpu();
if (!native.available) console.warn(`native-path tests skipped: ${native.reason}`);

const models: Record<string, CausalLM> = {};
beforeAll(async () => {
  if (!native.available) return;
  await initBackend({ backend: 'native' });
  models.gpt2 = await loadModel(await writeTinyModel('gpt2'));
  models.llama = await loadModel(await writeTinyModel('llama'));
});
afterAll(() => {
  Object.values(models).forEach((m) => m.dispose());
  if (native.available) registerNativeKernels(tf); // leave the process as initBackend set it up
});

function adapterFor(m: CausalLM, cfg: LoraConfig): NamedTensors {
  const a = initLoraAdapter(m, cfg, seededRandomBytes('native-path'));
  const rng = seededRandomBytes('native-path-b');
  for (const [k, t] of a) if (k.includes('lora_B')) a.set(k, { shape: t.shape, data: Float32Array.from(t.data, () => (uniform01(rng) - 0.5) * 0.2) });
  return a;
}

/** Loss and LoRA gradients of one batch, as the trainer computes them. */
async function lossAndGrads(m: CausalLM): Promise<Float32Array[]> {
  const cfg = defaultLoraConfig(m);
  const adapter = adapterFor(m, cfg);
  const names = [...adapter.keys()];
  const xs = names.map((n) => tf.tensor(adapter.get(n)!.data, adapter.get(n)!.shape));
  const ids = tf.tensor2d([[5, 9, 2, 7, 1, 3, 8, 4], [11, 3, 3, 60, 2, 9, 14, 1]], [2, 8], 'int32');
  const targets = tf.tensor1d([9, 2, 7, 1, 3, 8, 4, 6, 3, 3, 60, 2, 9, 14, 1, 5], 'int32');
  const { value, grads } = valueAndGradsFrugal((...vs) => {
    const rt = loraRuntime(m, cfg, new Map(names.map((n, i) => [n, vs[i]!])));
    return crossEntropy(m.forward(ids, { lora: rt, training: true }), targets);
  })(xs);
  const out = [(await value.data()) as Float32Array, ...(await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array)))];
  tf.dispose([value, ...grads, ...xs, ids, targets]);
  return out;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return s === 0 ? d : d / s;
}

describe.skipIf(!native.available)('the model on native kernels (fused ops, BLAS transposes) vs the pure-JS cpu kernels', () => {
  for (const kind of ['gpt2', 'llama'] as const) {
    it(`${kind}: the training loss and every LoRA gradient agree`, async () => {
      const m = models[kind]!;
      registerNativeKernels(tf);
      const fast = await lossAndGrads(m);
      unregisterNativeKernels(tf);
      const pure = await lossAndGrads(m);
      expect(fast.length).toBe(pure.length);
      expect(fast[0]![0]).toBeCloseTo(pure[0]![0]!, 5);
      fast.slice(1).forEach((g, i) => expect(relErr(g, pure[i + 1]!)).toBeLessThan(1e-4));
    });
  }
});
