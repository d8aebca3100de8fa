/**
 * The tfjs implementations against an independent reference: logits that plain PyTorch computes
 * for the fixtures written by scripts/torch/make_fixtures.py (HF modeling code transcribed), with
 * and without a PEFT LoRA adapter. Regenerate with
 * `/usr/bin/python3 scripts/torch/make_fixtures.py libs/model/fixtures`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { loadModel } from './load-model.js';
import { defaultLoraConfig, disposeLoraRuntime, initLoraAdapter, loraRuntime, mergeLoraAdapter } from './lora.js';
import { loadPeftAdapter, savePeftAdapter } from './peft-io.js';
import { writeModelDir } from './checkpoint.js';
import { tempDir } from './testing.js';
import type { CausalLM } from './causal-lm.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../../scripts/torch/reference_logits.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { timeout: 60_000 }).status === 0;

/** Logits of the PyTorch reference for a model dir (+ adapter dir) written by fedlora. */
function torchLogits(modelDir: string, adapterDir: string | undefined, ids: number[][]): Float32Array {
  const out = execFileSync(PYTHON, [SCRIPT, modelDir, adapterDir ?? '-', JSON.stringify(ids)], { encoding: 'utf8', timeout: 120_000 });
  return Float32Array.from((JSON.parse(out) as { logits: number[] }).logits);
}

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

describe.skipIf(!hasTorch)('what fedlora writes loads in the PyTorch reference', () => {
  const ids = [
    [5, 17, 200, 33, 9, 1, 64, 128],
    [256, 72, 101, 108, 108, 111, 44, 32],
  ];
  for (const name of ['gpt2', 'llama'] as const) {
    it(`${name}: a PEFT adapter saved here gives the same logits in torch, and so does the merged checkpoint`, async () => {
      const model = await loadModel(join(FIXTURES, name));
      try {
        const cfg = { ...defaultLoraConfig(model), r: 4, alpha: 12 };
        const adapter = initLoraAdapter(model, cfg, seededRandomBytes(11));
        const rng = seededRandomBytes(12);
        for (const [k, t] of adapter) if (k.includes('lora_B')) t.data.forEach((_, i) => (t.data[i] = uniform01(rng) - 0.5));
        const dir = tempDir();
        await savePeftAdapter(dir, model, cfg, adapter);
        const flat = { shape: [2, 8], data: Float32Array.from(ids.flat()) };
        const ours = await logits(model, flat, dir);
        expect(maxAbsDiff(ours, torchLogits(join(FIXTURES, name), dir, ids))).toBeLessThan(1e-4);
        mergeLoraAdapter(model, cfg, adapter);
        const merged = tempDir();
        await writeModelDir(merged, model.config, await model.hostWeights());
        expect(maxAbsDiff(ours, torchLogits(merged, undefined, ids))).toBeLessThan(1e-4);
      } finally {
        model.dispose();
      }
    }, 300_000); // two torch processes; minutes on a loaded machine
  }
});
