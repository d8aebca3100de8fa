import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { CausalLM } from './causal-lm.js';
import { parseModelConfig } from './config.js';
import { initWeights } from './init-weights.js';
import { crossEntropy } from './loss.js';
import { defaultLoraConfig, initLoraAdapter, loraRuntime, peftName, type LoraConfig } from './lora.js';
import { disposeLoraTraces, loraLayerTraces } from './lora-tap.js';
import { TINY_CONFIGS } from './testing.js';
import type { TextTokenizer } from './tokenizer.js';

const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

const models: CausalLM[] = [];
afterAll(() => models.forEach((m) => m.dispose()));

function setup(kind: 'gpt2' | 'llama', dropout: number): { model: CausalLM; lora: LoraConfig; vars: Map<string, tf.Variable>; ids: tf.Tensor2D; targets: tf.Tensor1D } {
  const config = parseModelConfig(TINY_CONFIGS[kind]);
  const model = new CausalLM(config, NO_TEXT, initWeights(config, 7, 0.2));
  models.push(model);
  const lora = { ...defaultLoraConfig(model), dropout };
  const adapter = initLoraAdapter(model, lora, seededRandomBytes(`tap-${kind}`));
  const rng = seededRandomBytes(`tap-b-${kind}`);
  // A non-zero B, so that the gradients of A are non-zero too.
  for (const [n, t] of adapter) if (n.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.4;
  const vars = new Map([...adapter].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape))]));
  const ids = tf.tensor2d(Int32Array.from({ length: 3 * 7 }, (_, i) => (i * 37 + 11) % 300), [3, 7], 'int32');
  const targets = tf.tensor1d(Int32Array.from({ length: 3 * 7 }, (_, i) => (i * 53 + 5) % 300), 'int32');
  return { model, lora, vars, ids, targets };
}

for (const kind of ['gpt2', 'llama'] as const) {
  describe(`loraLayerTraces (${kind})`, () => {
    it('gives each layer X and dL/dy from which s P^T X and s G^T H equal autodiff gradients of A and B, with dropout', async () => {
      const { model, lora, vars, ids, targets } = setup(kind, 0.3);
      const names = [...vars.keys()];
      const fwd = { training: true, seed: 42 };
      const loss = (logits: tf.Tensor2D) => crossEntropy(logits, targets);
      const auto = tf.grads((...xs: tf.Tensor[]) => loss(model.forward(ids, { ...fwd, lora: loraRuntime(model, lora, new Map(names.map((n, i) => [n, xs[i]!]))) })))(names.map((n) => vars.get(n)!));
      const rt = loraRuntime(model, lora, vars);
      const traces = loraLayerTraces(model, ids, rt, loss, fwd);
      expect([...traces.layers.keys()]).toEqual([...rt.modules.keys()]);
      for (const [path, { input, outputGrad }] of traces.layers) {
        const { a, b } = rt.modules.get(path)!;
        const s = rt.scale;
        const dA = tf.mul(tf.matMul(tf.matMul(outputGrad, b), input, true, false), s);
        const dB = tf.mul(tf.matMul(outputGrad, tf.matMul(input, a, false, true), true, false), s);
        const wantA = auto[names.indexOf(peftName(path, 'A'))]!;
        const wantB = auto[names.indexOf(peftName(path, 'B'))]!;
        for (const [got, want] of [[dA, wantA], [dB, wantB]] as const) {
          const scale = tf.max(tf.abs(want)).dataSync()[0]!;
          expect(scale).toBeGreaterThan(0);
          expect(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!).toBeLessThan(1e-4 * scale);
        }
        tf.dispose([dA, dB]);
      }
      disposeLoraTraces(traces);
      tf.dispose([...auto, ids, targets, ...vars.values()]);
    });

    it('leaves the forward pass unchanged and keeps no tensors after dispose', async () => {
      const { model, lora, vars, ids, targets } = setup(kind, 0);
      const rt = loraRuntime(model, lora, vars);
      const plain = model.forward(ids, { lora: rt });
      const loss = (logits: tf.Tensor2D) => crossEntropy(logits, targets);
      const run = () => {
        const t = loraLayerTraces(model, ids, rt, loss);
        const v = t.loss.dataSync()[0]!;
        disposeLoraTraces(t);
        return v;
      };
      const first = run();
      const before = tf.memory().numTensors;
      run();
      run();
      expect(tf.memory().numTensors).toBe(before);
      const want = crossEntropy(plain, targets);
      expect(first).toBeCloseTo(want.dataSync()[0]!, 5);
      tf.dispose([plain, want, ids, targets, ...vars.values()]);
    });
  });
}

describe('loraLayerTraces repeated over batch sizes (on the cpu backend its probes view one shared zero buffer)', () => {
  it('gives the same traces before and after passes of other batch sizes', async () => {
    const { model, lora, vars, ids, targets } = setup('gpt2', 0.1);
    const rt = loraRuntime(model, lora, vars);
    const grads = async (x: tf.Tensor2D, y: tf.Tensor1D) => {
      const t = loraLayerTraces(model, x, rt, (l) => crossEntropy(l, y), { training: true, seed: 3 });
      const out = await Promise.all([...t.layers.values()].flatMap((l) => [l.input.data(), l.outputGrad.data()]));
      disposeLoraTraces(t);
      return out.map((d) => Float32Array.from(d as Float32Array));
    };
    const first = await grads(ids, targets);
    // A smaller batch (a view of the start of the buffer), then a larger one (a new buffer).
    const small = [tf.slice(ids, [0, 0], [1, 7]) as tf.Tensor2D, tf.slice(targets, [0], [7]) as tf.Tensor1D] as const;
    const large = [tf.concat([ids, ids]) as tf.Tensor2D, tf.concat([targets, targets]) as tf.Tensor1D] as const;
    await grads(...small);
    await grads(...large);
    const again = await grads(ids, targets);
    again.forEach((d, i) => expect(Buffer.from(d.buffer).equals(Buffer.from(first[i]!.buffer))).toBe(true));
    expect(first.some((d) => d.some((v) => v !== 0))).toBe(true);
    tf.dispose([...small, ...large, ids, targets, ...vars.values()]);
  });
});

describe('loraLayerTraces arguments', () => {
  it('rejects a runtime that adapts no module', () => {
    const { model, vars, ids, targets } = setup('gpt2', 0);
    expect(() => loraLayerTraces(model, ids, { scale: 1, dropout: 0, modules: new Map() }, (l) => crossEntropy(l, targets))).toThrow(/adapts no module/);
    tf.dispose([ids, targets, ...vars.values()]);
  });
});
