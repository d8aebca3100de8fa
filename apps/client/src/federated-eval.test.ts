import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel, type CausalLM } from '@fedlora/model';
import type { LocalTrainer, RoundPlan } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import { evaluate, evaluateMcq, tokenizeToSequences } from '@fedlora/train';
import { EvaluatingTrainer } from './federated-eval.js';

let model: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = await loadModel(DEFAULT_BASE_MODEL_DIR);
});

const mcq = [
  { question: 'What is the name of the whale?', choices: ['Moby Dick', 'the Pequod'], answer: 0 },
  { question: 'Who is the captain?', choices: ['Ishmael', 'Ahab', 'Starbuck'], answer: 1 },
];

describe('EvaluatingTrainer', () => {
  it('sends the held-out metrics of the global adapter it received with the update, and passes accept through', async () => {
    const lora = defaultLoraConfig(model);
    const global = initLoraAdapter(model, lora, seededRandomBytes('g'));
    const inner: LocalTrainer = {
      numExamples: 7,
      accept: async () => ({ accept: false, reason: 'budget' }),
      train: async () => ({ delta: global, numExamples: 7, trainLoss: 1, metrics: { tokens: 3 } }),
    };
    const general = tokenizeToSequences(model, 'Call me Ishmael. Some years ago, never mind how long precisely, having little money in my purse.', 16);
    const t = new EvaluatingTrainer(inner, model, { mcq, general }, () => lora);
    expect(t.numExamples).toBe(7);
    expect(await t.accept!({} as RoundPlan)).toEqual({ accept: false, reason: 'budget' });
    const r = await t.train({} as RoundPlan, global);
    const expected = await evaluateMcq(model, mcq, { lora, adapter: global });
    expect(r.metrics).toEqual({
      tokens: 3,
      evalCount: 2,
      evalAcc: expected.acc,
      evalAccNorm: expected.acc_norm,
      generalLoss: (await evaluate(model, lora, global, general)).loss,
    });
  }, 300_000);
});
