import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { defaultLoraConfig, initBackend, initLoraAdapter, type CausalLM } from '@fedlora/model';
import { cloneNamed, seededRandomBytes, sha256Named } from '@fedlora/tensor';
import { evaluate, trainLocal } from './trainer.js';
import { tokenizeToSequences } from './data.js';
import { loadTrainState, saveTrainState } from './train-state.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SAMPLE_TEXT, tinyGpt2 } from './test-model.js';

let model: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' }); // pinned: the suite must not depend on optional rungs
  model = tinyGpt2();
});
afterAll(() => model?.dispose());

describe('trainLocal', () => {
  it('lowers the loss, returns new tensors and leaves the input adapter untouched', async () => {
    const lora = defaultLoraConfig(model);
    const adapter = initLoraAdapter(model, lora, seededRandomBytes(1));
    const before = sha256Named(adapter);
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(4), 16);
    const ev0 = await evaluate(model, lora, adapter, data);
    const res = await trainLocal(model, lora, adapter, data, { steps: 30, batchSize: 4, learningRate: 1e-2, seed: 3, warmupSteps: 3, gradClipNorm: 1 });
    expect(sha256Named(adapter)).toBe(before);
    const ev1 = await evaluate(model, lora, res.adapter, data);
    expect(ev1.loss).toBeLessThan(ev0.loss - 0.1);
    expect(res.steps).toBe(30);
    expect(res.tokens).toBe(30 * 4 * 16);
    expect(res.trainLoss).toBeGreaterThan(0);
  });

  it('is deterministic in the seed', async () => {
    const lora = defaultLoraConfig(model);
    const adapter = initLoraAdapter(model, lora, seededRandomBytes(2));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    const opts = { steps: 3, batchSize: 2, learningRate: 1e-2, seed: 'x' };
    const a = await trainLocal(model, lora, cloneNamed(adapter), data, opts);
    const b = await trainLocal(model, lora, cloneNamed(adapter), data, opts);
    expect(sha256Named(a.adapter)).toBe(sha256Named(b.adapter));
  });

  it('holds tf.memory().numTensors constant from step 1 to step 50', async () => {
    const lora = { ...defaultLoraConfig(model), dropout: 0.1 };
    const adapter = initLoraAdapter(model, lora, seededRandomBytes(4));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    const counts: number[] = [];
    await trainLocal(model, lora, adapter, data, {
      steps: 50,
      batchSize: 2,
      learningRate: 1e-3,
      seed: 5,
      gradClipNorm: 0.5,
      gradAccumulation: 2,
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).toHaveLength(50);
    expect(counts[49]).toBe(counts[0]);
  });
});

describe('trainLocal resume and early stopping', () => {
  it('resuming from a state saved to disk reproduces an uninterrupted run exactly', async () => {
    const lora = { ...defaultLoraConfig(model), dropout: 0.1 };
    const adapter = initLoraAdapter(model, lora, seededRandomBytes(6));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    const opts = { batchSize: 3, learningRate: 1e-2, seed: 9, warmupSteps: 2 };
    const full = await trainLocal(model, lora, adapter, data, { ...opts, steps: 6 });
    const first = await trainLocal(model, lora, adapter, data, { ...opts, steps: 3 });
    // The schedule spans the whole run, so the first leg must know the total: compare state after 3 of 6.
    const firstOfSix = await trainLocal(model, lora, adapter, data, { ...opts, steps: 3, totalSteps: 6 });
    const file = join(mkdtempSync(join(tmpdir(), 'fedlora-state-')), 'state.safetensors');
    await saveTrainState(file, firstOfSix.state);
    const resumed = await trainLocal(model, lora, adapter, data, { ...opts, steps: 3, totalSteps: 6, resume: await loadTrainState(file) });
    expect(first.state.optimizer.step).toBe(3);
    expect(sha256Named(resumed.adapter)).toBe(sha256Named(full.adapter));
  });

  it('stops early when held-out loss stops improving and returns the best adapter', async () => {
    const lora = defaultLoraConfig(model);
    const adapter = initLoraAdapter(model, lora, seededRandomBytes(7));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    const evals: number[] = [];
    const res = await trainLocal(model, lora, adapter, data.slice(0, 4), {
      steps: 200,
      batchSize: 4,
      learningRate: 0.05,
      seed: 1,
      evalData: data.slice(4),
      evalEvery: 5,
      patience: 2,
      onStep: (s) => s.evalLoss !== undefined && evals.push(s.evalLoss),
    });
    expect(res.stoppedEarly).toBe(true);
    expect(res.steps).toBeLessThan(200);
    expect(res.bestEvalLoss).toBe(Math.min(...evals));
    const ev = await evaluate(model, lora, res.adapter, data.slice(4));
    expect(ev.loss).toBeCloseTo(res.bestEvalLoss!, 5);
  });
});
