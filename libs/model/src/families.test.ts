/**
 * The RoPE decoder families against the float64 reference of scripts/torch/families.py: logits of
 * the tiny checkpoints written by scripts/torch/make_family_fixtures.py (hub layout: real config
 * keys, bf16/f16/f32, single-file and sharded), with and without their PEFT adapters. Regenerate
 * with `/usr/bin/python3 scripts/torch/make_family_fixtures.py libs/model/fixtures`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, type NamedTensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { loadModel } from './load-model.js';
import { CausalLM } from './causal-lm.js';
import { parseModelConfig } from './config.js';
import { readModelWeights } from './checkpoint.js';
import { disposeLoraRuntime, loraRuntime } from './lora.js';
import { loadPeftAdapter } from './peft-io.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

async function expected(name: string): Promise<NamedTensors> {
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

const FAMILIES = [
  ['llama3', 'Llama 3.2 layout (llama3 rope scaling, explicit head_dim, tied, GQA, bf16, 2 shards)'],
  ['qwen2.5', 'Qwen2.5 layout (q/k/v biases, tied, GQA, f16)'],
  ['mistral', 'Mistral (sliding window 5 < 16 tokens, untied, f32)'],
  ['gemma2', 'Gemma 2 (soft-capping, (1 + w) norms, GeGLU, sandwich norms, alternating sliding window, bf16)'],
  ['phi3', 'Phi-3 (fused qkv_proj and gate_up_proj, sliding window 6, f16, 2 shards)'],
] as const;

describe('RoPE decoder families match the float64 reference to 1e-4', () => {
  for (const [name, what] of FAMILIES) {
    it(`${what}: base logits, and with its PEFT adapter`, async () => {
      const exp = await expected(name);
      const model = await loadModel(join(FIXTURES, name));
      try {
        const base = await logits(model, exp.get('input_ids')!);
        expect(maxAbsDiff(base, exp.get('logits')!.data)).toBeLessThan(1e-4);
        const adapted = await logits(model, exp.get('input_ids')!, join(FIXTURES, name, 'adapter'));
        expect(maxAbsDiff(adapted, exp.get('logits_lora')!.data)).toBeLessThan(1e-4);
        expect(maxAbsDiff(exp.get('logits_lora')!.data, exp.get('logits')!.data)).toBeGreaterThan(1e-2);
      } finally {
        model.dispose();
      }
    });
  }

  for (const variant of ['linear', 'dynamic', 'noscale'] as const) {
    it(`Llama rope_scaling ${variant === 'noscale' ? 'null' : variant} (same weights, config changed)`, async () => {
      const dir = join(FIXTURES, 'llama3');
      const raw = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      const patched: Record<string, unknown> = { ...raw, rope_scaling: null };
      if (variant === 'linear') patched.rope_scaling = { rope_type: 'linear', factor: 4.0 };
      // Dynamic NTK only changes anything past max_position_embeddings: 8 here, inputs of 16.
      if (variant === 'dynamic') Object.assign(patched, { rope_scaling: { rope_type: 'dynamic', factor: 2.0 }, max_position_embeddings: 8 });
      const config = parseModelConfig(patched);
      const base = await loadModel(dir);
      const model = new CausalLM(config, base.tokenizer, await readModelWeights(dir, config));
      base.dispose();
      try {
        const exp = await expected('llama3');
        const ids = exp.get('input_ids')!;
        const first = { shape: [1, ids.shape[1]!], data: ids.data.slice(0, ids.shape[1]) };
        const got = await logits(model, first);
        expect(maxAbsDiff(got, exp.get(`logits_${variant}`)!.data)).toBeLessThan(1e-4);
        // The llama3 scaling of the fixture is not a no-op at these positions.
        if (variant === 'noscale') expect(maxAbsDiff(got, exp.get('logits')!.data.slice(0, got.length))).toBeGreaterThan(1e-3);
      } finally {
        model.dispose();
      }
    });
  }
});
