/**
 * Adapters out: what fedlora writes for the RoPE decoder families loads on the Python side under
 * PEFT's names (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`, Phi-3's fused
 * `qkv_proj` / `gate_up_proj`), and the float64 reference (scripts/torch/reference_logits.py)
 * computes the same logits from the saved adapter and from the merged checkpoint.
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
import { disposeLoraRuntime, initLoraAdapter, loraRuntime, mergeLoraAdapter, type LoraConfig } from './lora.js';
import { savePeftAdapter } from './peft-io.js';
import { writeModelDir } from './checkpoint.js';
import { tempDir } from './testing.js';

const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../../scripts/torch/reference_logits.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { timeout: 60_000 }).status === 0;
const IDS = [
  [5, 17, 200, 33, 9, 1, 64, 128, 40, 41, 42, 43],
  [256, 72, 101, 108, 108, 111, 44, 32, 7, 8, 9, 10],
];

function torchLogits(modelDir: string, adapterDir: string | undefined): Float32Array {
  const out = execFileSync(PYTHON, [SCRIPT, modelDir, adapterDir ?? '-', JSON.stringify(IDS)], { encoding: 'utf8', timeout: 120_000 });
  return Float32Array.from((JSON.parse(out) as { logits: number[] }).logits);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

const ALL_LLAMA = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const CASES: [string, string[], string][] = [
  ['llama3', ALL_LLAMA, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'],
  ['qwen2.5', ALL_LLAMA, 'base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight'],
  ['mistral', ['q_proj', 'v_proj'], 'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight'],
  ['gemma2', ALL_LLAMA, 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight'],
  ['phi3', ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'], 'base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight'],
];

describe.skipIf(!hasTorch)('adapters fedlora writes for each family load under PEFT names in the reference', () => {
  for (const [name, targets, peftKey] of CASES) {
    it(`${name}: saved adapter and merged checkpoint give fedlora's logits in torch (targets ${targets.join(', ')})`, async () => {
      const model = await loadModel(join(FIXTURES, name));
      try {
        const cfg: LoraConfig = { r: 4, alpha: 12, dropout: 0, targetModules: targets };
        const adapter = initLoraAdapter(model, cfg, seededRandomBytes(21));
        const rng = seededRandomBytes(22);
        for (const [k, t] of adapter) if (k.includes('lora_B')) t.data.forEach((_, i) => (t.data[i] = uniform01(rng) - 0.5));
        const dir = tempDir();
        await savePeftAdapter(dir, model, cfg, adapter);
        const saved = parseSafetensors(await readFile(join(dir, 'adapter_model.safetensors'))).tensors;
        expect(saved.has(peftKey)).toBe(true);
        const savedCfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
        expect(savedCfg).toMatchObject({ peft_type: 'LORA', target_modules: targets, fan_in_fan_out: false });

        const input = tf.tensor2d(IDS.flat(), [2, IDS[0]!.length], 'int32');
        const rt = loraRuntime(model, cfg, adapter);
        const out = model.forward(input, { lora: rt });
        const ours = (await out.data()) as Float32Array;
        tf.dispose([input, out]);
        disposeLoraRuntime(rt);

        expect(maxAbsDiff(ours, torchLogits(join(FIXTURES, name), dir))).toBeLessThan(1e-4);
        mergeLoraAdapter(model, cfg, adapter);
        const merged = tempDir();
        await writeModelDir(merged, model.config, await model.hostWeights());
        expect(maxAbsDiff(ours, torchLogits(merged, undefined))).toBeLessThan(1e-4);
      } finally {
        model.dispose();
      }
    }, 300_000); // two torch processes; minutes on a loaded machine
  }
});
