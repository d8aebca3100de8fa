import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { CausalLM } from './causal-lm.js';
import { parseModelConfig } from './config.js';
import { initWeights } from './init-weights.js';
import { TINY_CONFIGS } from './testing.js';
import type { TextTokenizer } from './tokenizer.js';

const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

async function logits(m: CausalLM): Promise<Float32Array> {
  const ids = tf.tensor2d([[5, 9, 2, 7, 1, 3]], [1, 6], 'int32');
  const out = m.forward(ids);
  const d = (await out.data()) as Float32Array;
  tf.dispose([ids, out]);
  return d;
}

describe('CausalLM tied head', () => {
  it('follows a replaced embedding (the cached E^T, where one is kept, is refreshed)', async () => {
    const config = parseModelConfig(TINY_CONFIGS.gpt2);
    const hf = initWeights(config, 3, 0.2);
    const m = new CausalLM(config, NO_TEXT, hf);
    await logits(m); // makes the cached E^T on backends that keep one
    const e = hf.get('transformer.wte.weight')!;
    const doubled = { shape: e.shape, data: e.data.map((x) => 2 * x) };
    m.setParameter('transformer.wte.weight', tf.tensor(doubled.data, doubled.shape));
    const fresh = new CausalLM(config, NO_TEXT, new Map([...hf, ['transformer.wte.weight', doubled]]) as NamedTensors);
    const [got, want] = [await logits(m), await logits(fresh)];
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 4));
    m.dispose();
    fresh.dispose();
  });

  it('keeps no per-call tensors: memory is flat across forward passes', async () => {
    const config = parseModelConfig(TINY_CONFIGS.gpt2);
    const m = new CausalLM(config, NO_TEXT, initWeights(config, 4, 0.2));
    await logits(m);
    const before = tf.memory().numTensors;
    await logits(m);
    await logits(m);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
