import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { defaultLoraConfig, initBackend, initLoraAdapter, type CausalLM, type LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { runTrainingLoop, type GradientSource } from './trainer-loop.js';
import { warmupCosine } from './schedule.js';
import { tinyGpt2 } from './test-model.js';

let model: CausalLM;
let lora: LoraConfig;
let adapter: NamedTensors;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2();
  lora = defaultLoraConfig(model);
  adapter = initLoraAdapter(model, lora, seededRandomBytes('loop'));
});
afterAll(() => model?.dispose());

describe('runTrainingLoop (one loop, pluggable gradient source)', () => {
  it('applies what the source gives with AdamW, reports the source\'s fields per step, and disposes every gradient and the source', async () => {
    const target = [...adapter.keys()][0]!;
    const seen: number[] = [];
    let disposed = false;
    const source: GradientSource<{ marker: number }> = {
      async gradients(vars, step) {
        seen.push(step);
        // +1 on one tensor, 0 elsewhere: AdamW moves exactly that tensor, by about lr per step.
        const grads = new Map([...vars].map(([n, v]) => [n, n === target ? tf.onesLike(v) : tf.zerosLike(v)]));
        return { grads, factor: 1, loss: step === 1 ? Number.NaN : 2, tokens: 10, info: { marker: step * 10 } };
      },
      dispose: () => void (disposed = true),
    };
    const before = tf.memory().numTensors;
    const steps: Array<{ step: number; marker: number; loss: number }> = [];
    const r = await runTrainingLoop(model, lora, adapter, source, { steps: 3, learningRate: 1e-2, onStep: (s) => void steps.push(s) });
    expect(seen).toEqual([0, 1, 2]);
    expect(steps.map((s) => [s.step, s.marker])).toEqual([
      [1, 0],
      [2, 10],
      [3, 20],
    ]);
    expect(r.trainLoss).toBe(2); // the step without data (NaN loss) is left out of the mean
    expect(r.tokens).toBe(30);
    expect(disposed).toBe(true);
    for (const [name, t] of r.adapter) {
      const moved = t.data.some((v, i) => v !== adapter.get(name)!.data[i]);
      expect(moved).toBe(name === target);
    }
    // A constant gradient moves each value by about the step's learning rate (Adam's normalised step).
    const lrSum = [0, 1, 2].reduce((a, s) => a + warmupCosine(s, 3, 1e-2, 0), 0);
    expect(r.adapter.get(target)!.data[0]!).toBeCloseTo(adapter.get(target)!.data[0]! - lrSum, 3);
    expect(tf.memory().numTensors - before).toBeLessThanOrEqual(2 * adapter.size); // at most AdamW's moment seeds
  });
});
