import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, seededRandomBytes, uniform01, type NamedTensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import type { CausalLM } from './causal-lm.js';
import { loadModel } from './load-model.js';
import { defaultLoraConfig, disposeLoraRuntime, initLoraAdapter, loraRuntime, mergeLoraAdapter, type LoraConfig } from './lora.js';
import { loadPeftAdapter, savePeftAdapter } from './peft-io.js';
import { tempDir, writeTinyModel } from './testing.js';

const models: Record<string, CausalLM> = {};
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  models.gpt2 = await loadModel(await writeTinyModel('gpt2'));
  models.llama = await loadModel(await writeTinyModel('llama'));
});
afterAll(() => Object.values(models).forEach((m) => m.dispose()));

/** A non-trivial adapter: random A and random (not zero) B. */
function randomAdapter(m: CausalLM, cfg: LoraConfig, seed: number): NamedTensors {
  const a = initLoraAdapter(m, cfg, seededRandomBytes(seed));
  const rng = seededRandomBytes(seed + 1);
  for (const [k, t] of a) if (k.includes('lora_B')) a.set(k, { shape: t.shape, data: Float32Array.from(t.data, () => (uniform01(rng) - 0.5) * 0.2) });
  return a;
}

async function logits(m: CausalLM, adapter?: { cfg: LoraConfig; t: NamedTensors }): Promise<Float32Array> {
  const ids = tf.tensor2d([[5, 9, 2, 7, 1, 3]], [1, 6], 'int32');
  const rt = adapter ? loraRuntime(m, adapter.cfg, adapter.t) : undefined;
  const out = m.forward(ids, rt ? { lora: rt } : {});
  const d = (await out.data()) as Float32Array;
  tf.dispose([ids, out]);
  if (rt) disposeLoraRuntime(rt);
  return d;
}

describe('LoRA', () => {
  it('initialises as PEFT does: PEFT names, A uniform in +-1/sqrt(in), B zero', () => {
    const m = models.gpt2!;
    const cfg = defaultLoraConfig(m);
    const ad = initLoraAdapter(m, cfg, seededRandomBytes(1));
    const a = ad.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!;
    const b = ad.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')!;
    expect(a.shape).toEqual([8, 32]);
    expect(b.shape).toEqual([96, 8]);
    expect(Math.max(...a.data.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(32));
    expect(b.data.every((x) => x === 0)).toBe(true);
    const l = initLoraAdapter(models.llama!, defaultLoraConfig(models.llama!), seededRandomBytes(1));
    expect(l.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!.shape).toEqual([8, 32]);
    expect(l.get('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight')!.shape).toEqual([16, 8]);
  });

  it('starts equal to the base model because B is zero', async () => {
    const m = models.llama!;
    const cfg = defaultLoraConfig(m);
    const base = await logits(m);
    const adapted = await logits(m, { cfg, t: initLoraAdapter(m, cfg, seededRandomBytes(2)) });
    expect(adapted).toEqual(base);
  });

  it('merging gives the same logits as the unmerged adapter, and unmerging restores the base', async () => {
    for (const kind of ['gpt2', 'llama']) {
      const m = models[kind]!;
      const cfg: LoraConfig = { r: 4, alpha: 8, dropout: 0, targetModules: kind === 'gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'v_proj', 'down_proj'] };
      const ad = randomAdapter(m, cfg, 7);
      const base = await logits(m);
      const unmerged = await logits(m, { cfg, t: ad });
      expect(Math.max(...unmerged.map((x, i) => Math.abs(x - base[i]!)))).toBeGreaterThan(1e-3);
      mergeLoraAdapter(m, cfg, ad, 1);
      const merged = await logits(m);
      for (let i = 0; i < base.length; i++) expect(merged[i]!).toBeCloseTo(unmerged[i]!, 4);
      mergeLoraAdapter(m, cfg, ad, -1);
      const restored = await logits(m);
      for (let i = 0; i < base.length; i++) expect(restored[i]!).toBeCloseTo(base[i]!, 4);
    }
  });

  it('rejects a target module that matches nothing, listing the available ones', () => {
    expect(() => initLoraAdapter(models.gpt2!, { r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj'] }, seededRandomBytes(1))).toThrow(
      /"q_proj" matches no linear module \(available: attn\.c_attn/,
    );
  });
});

describe('PEFT adapter format', () => {
  it('writes PEFT names, shapes and fan_in_fan_out, and reads them back', async () => {
    for (const kind of ['gpt2', 'llama']) {
      const m = models[kind]!;
      const cfg = defaultLoraConfig(m);
      const ad = randomAdapter(m, cfg, 3);
      const dir = tempDir();
      await savePeftAdapter(dir, m, cfg, ad);
      const conf = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
      expect(conf).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, fan_in_fan_out: kind === 'gpt2', bias: 'none' });
      const { tensors } = parseSafetensors(await readFile(join(dir, 'adapter_model.safetensors')));
      expect([...tensors.keys()]).toEqual([...ad.keys()]);
      const back = await loadPeftAdapter(dir, m);
      expect(back.config).toEqual(cfg);
      for (const [k, t] of ad) expect(back.adapter.get(k)!.data).toEqual(t.data);
    }
  });

  it('accepts tensor names that still carry the adapter name', async () => {
    const m = models.gpt2!;
    const cfg = defaultLoraConfig(m);
    const ad = randomAdapter(m, cfg, 3);
    const dir = tempDir();
    await savePeftAdapter(dir, m, cfg, ad);
    const { tensors } = parseSafetensors(await readFile(join(dir, 'adapter_model.safetensors')));
    const named = new Map([...tensors].map(([k, v]) => [k.replace(/lora_([AB])\.weight$/, 'lora_$1.default.weight'), v]));
    const { serializeSafetensors } = await import('@fedlora/tensor');
    await (await import('node:fs/promises')).writeFile(join(dir, 'adapter_model.safetensors'), serializeSafetensors(named));
    const back = await loadPeftAdapter(dir, m);
    expect([...back.adapter.keys()]).toEqual([...ad.keys()]);
  });

  it('rejects fan_in_fan_out false for GPT-2 Conv1D layers', async () => {
    const m = models.gpt2!;
    const cfg = defaultLoraConfig(m);
    const dir = tempDir();
    await savePeftAdapter(dir, m, cfg, initLoraAdapter(m, cfg, seededRandomBytes(1)));
    const conf = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8'));
    await (await import('node:fs/promises')).writeFile(join(dir, 'adapter_config.json'), JSON.stringify({ ...conf, fan_in_fan_out: false }));
    await expect(loadPeftAdapter(dir, m)).rejects.toThrow(/adapter_config\.json: field "fan_in_fan_out" must be true for model_type gpt2/);
  });
});
