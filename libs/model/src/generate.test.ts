import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import type { CausalLM } from './causal-lm.js';
import { generate, sample } from './generate.js';
import { loadModel } from './load-model.js';

let model: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = await loadModel(join(fileURLToPath(new URL('../fixtures', import.meta.url)), 'gpt2'));
});
afterAll(() => model.dispose());

describe('generate', () => {
  it('is reproducible for a seed and differs across seeds', async () => {
    const run = (seed: number) => generate(model, 'The whale', { maxNewTokens: 12, temperature: 1, topK: 50, rng: seededRandomBytes(seed), stopAtEos: false });
    const a = await run(1);
    expect((await run(1)).ids).toEqual(a.ids);
    expect((await run(2)).ids).not.toEqual(a.ids);
    expect(a.ids).toHaveLength(12);
    expect(a.text).toBe(model.tokenizer.decode(a.ids));
  });

  it('samples greedily at temperature 0 and only among the top k otherwise', () => {
    const z = new Float32Array([0.1, 3, 2, -1]);
    expect(sample(z, 0, undefined, seededRandomBytes(1))).toBe(1);
    const rng = seededRandomBytes(2);
    for (let i = 0; i < 50; i++) expect([1, 2]).toContain(sample(z, 5, 2, rng));
  });
});
