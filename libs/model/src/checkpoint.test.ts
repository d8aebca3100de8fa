import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, serializeSafetensors } from '@fedlora/tensor';
import { initBackend } from './backend.js';
import { loadModel } from './load-model.js';
import { tempDir, writeTinyModel } from './testing.js';

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

async function logitsOf(dir: string): Promise<Float32Array> {
  const m = await loadModel(dir);
  const ids = tf.tensor2d([[1, 2, 3, 4, 5]], [1, 5], 'int32');
  const out = m.forward(ids);
  const data = (await out.data()) as Float32Array;
  tf.dispose([ids, out]);
  m.dispose();
  return data;
}

describe('Hugging Face model directories', () => {
  it('loads what it writes, for GPT-2 and Llama, with config and tokenizer', async () => {
    for (const kind of ['gpt2', 'llama'] as const) {
      const dir = await writeTinyModel(kind);
      const m = await loadModel(dir);
      expect(m.config.modelType).toBe(kind);
      expect(m.tokenizer.decode(m.tokenizer.encode('the age of wisdom'))).toBe('the age of wisdom');
      const w = await m.hostWeights();
      const back = parseSafetensors(await readFile(join(dir, 'model.safetensors'))).tensors;
      for (const [k, t] of back) expect(w.get(k)!.data).toEqual(t.data);
      m.dispose();
    }
  });

  it('accepts legacy GPT-2 names without "transformer." and ignores attention-mask buffers', async () => {
    const dir = await writeTinyModel('gpt2');
    const ref = await logitsOf(dir);
    const { tensors } = parseSafetensors(await readFile(join(dir, 'model.safetensors')));
    const legacy = new Map([...tensors].map(([k, v]) => [k.replace(/^transformer\./, ''), v]));
    legacy.set('h.0.attn.bias', { shape: [1, 1, 32, 32], data: new Float32Array(32 * 32) });
    legacy.set('h.0.attn.masked_bias', { shape: [1], data: new Float32Array([-1e4]) });
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(legacy, { dtype: 'F16' }));
    const got = await logitsOf(dir);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThan(0.05);
  });

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const dir = await writeTinyModel('llama');
    const ref = await logitsOf(dir);
    const { tensors } = parseSafetensors(await readFile(join(dir, 'model.safetensors')));
    const names = [...tensors.keys()];
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeFile(join(dir, file), serializeSafetensors(new Map(part.map((n) => [n, tensors.get(n)!])), { dtype: 'BF16' }));
      for (const n of part) weightMap[n] = file;
    }
    await rename(join(dir, 'model.safetensors'), join(dir, 'unused.bin'));
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const got = await logitsOf(dir);
    for (let i = 0; i < ref.length; i++) expect(Math.abs(got[i]! - ref[i]!)).toBeLessThan(0.1);
  });

  it('names the file for a missing config, weights or tokenizer', async () => {
    await expect(loadModel(tempDir())).rejects.toThrow(/config\.json: missing file/);
    const dir = await writeTinyModel('gpt2');
    await rename(join(dir, 'model.safetensors'), join(dir, 'x'));
    await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors: missing file/);
    const dir2 = await writeTinyModel('gpt2');
    await rename(join(dir2, 'tokenizer.json'), join(dir2, 'x'));
    await expect(loadModel(dir2)).rejects.toThrow(/tokenizer\.json: missing file/);
  });

  it('rejects an unsupported model_type naming the field', async () => {
    const dir = await writeTinyModel('gpt2');
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'bert' }));
    await expect(loadModel(dir)).rejects.toThrow(/config\.json: unsupported "model_type" "bert"/);
  });

  it('rejects a truncated safetensors file naming the file', async () => {
    const dir = await writeTinyModel('gpt2');
    const bytes = await readFile(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors: truncated safetensors file/);
  });

  it('rejects a tensor of the wrong shape or dtype naming the tensor', async () => {
    const dir = await writeTinyModel('gpt2');
    const { tensors } = parseSafetensors(await readFile(join(dir, 'model.safetensors')));
    tensors.set('transformer.ln_f.weight', { shape: [31], data: new Float32Array(31) });
    await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
    await expect(loadModel(dir)).rejects.toThrow(/tensor "transformer\.ln_f\.weight" has shape \[31\], expected \[32\]/);
    const json = JSON.stringify({ 'transformer.wte.weight': { dtype: 'I8', shape: [300, 32], data_offsets: [0, 9600] } });
    const buf = Buffer.alloc(8 + json.length + 9600);
    buf.writeBigUInt64LE(BigInt(json.length), 0);
    buf.write(json, 8);
    await writeFile(join(dir, 'model.safetensors'), buf);
    await expect(loadModel(dir)).rejects.toThrow(/tensor "transformer\.wte\.weight" has dtype I8/);
  });

  it('rejects a tokenizer whose vocabulary exceeds the embedding', async () => {
    const dir = await writeTinyModel('gpt2');
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    const small = await writeTinyModel('gpt2');
    await copyFile(join(small, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...cfg, vocab_size: 200 }));
    await expect(loadModel(dir)).rejects.toThrow(/tokenizer\.json: tokenizer has \d+ tokens but config\.json field "vocab_size" is 200/);
  });
});
