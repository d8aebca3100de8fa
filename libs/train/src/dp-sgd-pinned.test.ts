import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, parseModelConfig, type TextTokenizer } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01, uniformInt } from '@fedlora/tensor';
import { privateLoraGradient } from './dp-sgd-grads.js';
import { trainLocalDpSgd } from './dp-sgd.js';

/*
 * Bit-for-bit pins of DP-SGD releases, recorded before the clipped grid sum moved to native
 * kernels and typed-array loops (dpspeed, sixth session): the same seed must give the same
 * bytes, since the algorithm did not change, only how fast it runs.
 */
const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;
const cfg = parseModelConfig({ model_type: 'gpt2', vocab_size: 200, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });

let model: CausalLM;
let adapter: NamedTensors;
let vars: Map<string, tf.Variable>;
let data: Int32Array[];
beforeAll(async () => {
  // wasm always: the pins hold for one backend's float32 kernels (others round the passes differently).
  await initBackend({ backend: 'wasm' });
  model = new CausalLM(cfg, NO_TEXT, initWeights(cfg, 5, 0.2));
  const lora = defaultLoraConfig(model);
  adapter = initLoraAdapter(model, lora, seededRandomBytes('pinned-a'));
  const rng = seededRandomBytes('pinned-b');
  for (const [n, t] of adapter) if (n.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
  vars = new Map([...adapter].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
  data = Array.from({ length: 24 }, (_, i) => Int32Array.from({ length: 9 + (i % 3) * 4 }, () => uniformInt(rng, cfg.vocabSize)));
});
afterAll(() => {
  vars?.forEach((v) => v.dispose());
  model?.dispose();
});

const digest = (g: NamedTensors): string => {
  const h = createHash('sha256');
  for (const [name, t] of g) h.update(name).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return h.digest('hex').slice(0, 16);
};

describe('DP-SGD releases pinned bit for bit (same seed, same bytes)', () => {
  it.each([
    ['one unit per sequence', undefined, '030b56ea5ef08642', 7 / 24],
    ['units of several sequences', [0, 1, 1, 2, 3, 1, 3, 4, 5, 5, 6, 7, 8, 8, 8, 9, 10, 11, 11, 12, 13, 14, 15, 15], 'c136e382dd751c4e', 9 / 16],
  ])('privateLoraGradient, ghost clipping, %s', async (_, units, pinned, clippedFraction) => {
    const lora = defaultLoraConfig(model);
    const g = await privateLoraGradient(model, lora, vars, data, { clipNorm: 3, noiseMultiplier: 1.1, expectedBatchSize: 20, rng: seededRandomBytes('pinned-noise'), dropoutSeed: 7, ...(units ? { units } : {}) });
    expect({ digest: digest(g.gradient), clippedFraction: g.clippedFraction }).toEqual({ digest: pinned, clippedFraction });
  });

  it('trainLocalDpSgd, three steps', async () => {
    const lora = defaultLoraConfig(model);
    const r = await trainLocalDpSgd(model, lora, adapter, data, { steps: 3, samplingRate: 0.5, clipNorm: 3, noiseMultiplier: 0.8, learningRate: 0.01, rng: seededRandomBytes('pinned-run') });
    expect({ digest: digest(r.adapter), clippedFraction: r.clippedFraction, sampledSequences: r.sampledSequences }).toEqual({ digest: '14025b09c966f156', clippedFraction: 5 / 19, sampledSequences: 38 });
  });
});
