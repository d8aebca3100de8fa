import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, parseModelConfig, type TextTokenizer } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01, uniformInt } from '@fedlora/tensor';
import { privateLoraGradient, type PrivateGradientOptions } from './dp-sgd-grads.js';

const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;
const cfg = parseModelConfig({ model_type: 'gpt2', vocab_size: 200, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });

let model: CausalLM;
let vars: Map<string, tf.Variable>;
let data: Int32Array[];
// Seven sequences in four units (unit 1 has three, unit 3 two): passes must keep a unit's sequences together.
const units = [0, 1, 1, 2, 3, 1, 3];
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = new CausalLM(cfg, NO_TEXT, initWeights(cfg, 5, 0.2));
  const lora = defaultLoraConfig(model);
  const adapter: NamedTensors = initLoraAdapter(model, lora, seededRandomBytes('passes-a'));
  const rng = seededRandomBytes('passes-b');
  for (const [n, t] of adapter) if (n.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
  vars = new Map([...adapter].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
  data = units.map((_, i) => Int32Array.from({ length: 9 + (i % 3) * 4 }, () => uniformInt(rng, cfg.vocabSize)));
});
afterAll(() => {
  vars?.forEach((v) => v.dispose());
  model?.dispose();
});

const opts = (unitsPerPass: number, noiseMultiplier: number): PrivateGradientOptions => ({
  clipNorm: 0.05,
  noiseMultiplier,
  expectedBatchSize: 4,
  rng: seededRandomBytes('same-noise'),
  dropoutSeed: 3,
  units,
  unitsPerPass,
});
const flat = (g: NamedTensors) => Float64Array.from([...g.values()].flatMap((t) => [...t.data]));
const maxRelDiff = (a: Float64Array, b: Float64Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!))) / Math.max(...b.map(Math.abs));

describe('privateLoraGradient in passes of whole units (unitsPerPass)', () => {
  it.each([0, 1.5])('gives the one-pass release (noise multiplier %s), each unit clipped as one', async (z) => {
    const lora = defaultLoraConfig(model);
    const one = await privateLoraGradient(model, lora, vars, data, opts(64, z));
    for (const perPass of [1, 2, 3]) {
      const passes = await privateLoraGradient(model, lora, vars, data, opts(perPass, z));
      expect(maxRelDiff(flat(passes.gradient), flat(one.gradient))).toBeLessThan(1e-5);
      expect(passes.clippedFraction).toBe(one.clippedFraction);
      expect(passes.meanLoss).toBeCloseTo(one.meanLoss, 5);
    }
    expect(one.clippedFraction).toBeGreaterThan(0); // the clip binds, so grouping by unit matters
  });

  it('gives the event loop a turn between passes (heartbeats and the coordinator keep running during a large step)', async () => {
    const lora = defaultLoraConfig(model);
    const turns = async (perPass: number) => {
      let n = 0;
      const tick = () => {
        n++;
        if (!done) setImmediate(tick);
      };
      let done = false;
      setImmediate(tick);
      await privateLoraGradient(model, lora, vars, data, opts(perPass, 1));
      done = true;
      return n;
    };
    const inPasses = await turns(1);
    expect(inPasses).toBeGreaterThanOrEqual(3); // 4 units, 4 passes: a turn between each
    expect(await turns(64)).toBeLessThan(inPasses); // one pass: the step holds the event loop throughout
  });

  it('rejects a non-positive pass size', async () => {
    await expect(privateLoraGradient(model, defaultLoraConfig(model), vars, data, opts(0, 1))).rejects.toThrow(/unitsPerPass must be a positive integer, received 0/);
  });
});
