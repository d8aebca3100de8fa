import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultLoraConfig, initBackend, initLoraAdapter, type CausalLM } from '@fedlora/model';
import { l2NormNamed, seededRandomBytes, subtractNamed } from '@fedlora/tensor';
import { tokenizeToSequences } from './data.js';
import { SAMPLE_TEXT, tinyGpt2 } from './test-model.js';
import { trainLocal } from './trainer.js';

let model: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2();
});
afterAll(() => model?.dispose());

describe('FedProx proximal term (Li et al. 2020)', () => {
  it('keeps the local adapter closer to the adapter it started from', async () => {
    const lora = defaultLoraConfig(model);
    const start = initLoraAdapter(model, lora, seededRandomBytes(5));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(4), 16);
    const opts = { steps: 20, batchSize: 4, learningRate: 1e-2, seed: 'prox' };
    const free = await trainLocal(model, lora, start, data, opts);
    const prox = await trainLocal(model, lora, start, data, { ...opts, proximalMu: 50 });
    const driftFree = l2NormNamed(subtractNamed(free.adapter, start));
    const driftProx = l2NormNamed(subtractNamed(prox.adapter, start));
    expect(driftProx).toBeLessThan(0.5 * driftFree);
  });

  it('with mu = 0 is exactly plain local training', async () => {
    const lora = defaultLoraConfig(model);
    const start = initLoraAdapter(model, lora, seededRandomBytes(6));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    const opts = { steps: 3, batchSize: 2, learningRate: 1e-2, seed: 'zero' };
    const a = await trainLocal(model, lora, start, data, opts);
    const b = await trainLocal(model, lora, start, data, { ...opts, proximalMu: 0 });
    expect(l2NormNamed(subtractNamed(a.adapter, b.adapter))).toBe(0);
  });

  it('rejects a negative mu', async () => {
    const lora = defaultLoraConfig(model);
    const start = initLoraAdapter(model, lora, seededRandomBytes(7));
    const data = tokenizeToSequences(model, SAMPLE_TEXT.repeat(3), 16);
    await expect(trainLocal(model, lora, start, data, { steps: 1, batchSize: 2, learningRate: 1e-2, seed: 1, proximalMu: -1 })).rejects.toThrow(/proximalMu must be >= 0/);
  });
});
