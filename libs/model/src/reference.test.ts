/**
 * The tfjs implementations against an independent reference: logits that plain PyTorch computes
 * for the fixtures written by scripts/torch/make_fixtures.py (HF modeling code transcribed), with
 * and without a PEFT LoRA adapter. Regenerate with
 * `/usr/bin/python3 scripts/torch/make_fixtures.py libs/model/fixtures`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { loadModel } from './load-model.js';
import { disposeLoraRuntime, loraRuntime } from './lora.js';
import { loadPeftAdapter } from './peft-io.js';
import type { CausalLM } from './causal-lm.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

async function expected(name: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  return parseSafetensors(await readFile(join(FIXTURES, name, 'expected.safetensors'))).tensors;
}

async function logits(model: CausalLM, ids: { shape: number[]; data: Float32Array }, adapterDir?: string): Promise<Float32Array> {
  const input = tf.tensor2d(Int32Array.from(ids.data), ids.shape as [number, number], 'int32');
  const lora = adapterDir ? await loadPeftAdapter(adapterDir, model) : undefined;
  const rt = lora ? loraRuntime(model, lora.config, lora.adapter) : undefined;
  const out = model.forward(input, rt ? { lora: rt } : {});
  const data = (await out.data()) as Float32Array;
  tf.dispose([input, out]);
  if (rt) disposeLoraRuntime(rt);
  return data;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('logits match the PyTorch reference to 1e-4', () => {
  for (const [name, what] of [
    ['gpt2', 'GPT-2 (legacy names, attn.bias buffers, float16 storage, tied head)'],
    ['llama', 'Llama (GQA 4/2 heads, rope_theta 5e5, untied head, bfloat16 storage)'],
    ['qwen2', 'Qwen2-style Llama (q/k/v biases, tied head, float32 storage)'],
  ] as const) {
    it(`${what}`, async () => {
      const exp = await expected(name);
      const model = await loadModel(join(FIXTURES, name));
      try {
        const got = await logits(model, exp.get('input_ids')!);
        const diff = maxAbsDiff(got, exp.get('logits')!.data);
        expect(diff).toBeLessThan(1e-4);
        expect(diff).toBeGreaterThan(0); // computed, not copied
      } finally {
        model.dispose();
      }
    });
  }

  for (const name of ['gpt2', 'llama'] as const) {
    it(`${name} with a PEFT LoRA adapter (${name === 'gpt2' ? 'fan_in_fan_out Conv1D' : 'nn.Linear'})`, async () => {
      const exp = await expected(name);
      const model = await loadModel(join(FIXTURES, name));
      try {
        const got = await logits(model, exp.get('input_ids')!, join(FIXTURES, name, 'adapter'));
        expect(maxAbsDiff(got, exp.get('logits_lora')!.data)).toBeLessThan(1e-4);
        expect(maxAbsDiff(exp.get('logits_lora')!.data, exp.get('logits')!.data)).toBeGreaterThan(1e-2);
      } finally {
        model.dispose();
      }
    });
  }
});
