/**
 * Reading and writing a Hugging Face model directory: `config.json`, `model.safetensors` or a
 * sharded `model.safetensors.index.json` (`{"weight_map": {name: shard file}}`), tensors in
 * F32/F16/BF16 upcast to float32. Every error names the file and the field or tensor.
 */
import { readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HostTensor, NamedTensors } from '@fedlora/tensor';
import { decodeSafetensorsEntry, readSafetensorsHeader, serializeSafetensors } from '@fedlora/tensor';
import { parseModelConfig, type ModelConfig } from './config.js';
import { canonicalName, isIgnoredBuffer, parameterLayout } from './architecture.js';

/** A model directory that cannot be loaded; the message names the file. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Reads a file, turning ENOENT into a CheckpointError that names it. */
export async function readModelFile(file: string, why: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CheckpointError(`${file}: missing file (${why})`);
    throw new CheckpointError(`${file}: ${e.message}`);
  }
}

/** Reads and parses `config.json` of a model directory. */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const file = join(dir, 'config.json');
  const text = (await readModelFile(file, 'a model directory needs config.json')).toString('utf8');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new CheckpointError(`${file}: invalid JSON (${(err as Error).message})`);
  }
  try {
    return parseModelConfig(raw, file);
  } catch (err) {
    throw new CheckpointError((err as Error).message);
  }
}

/**
 * Loads the weights of a model directory, checks every expected tensor is present with the right
 * shape, and returns them under canonical names (unknown extra tensors are an error; known
 * buffers such as GPT-2's `attn.bias` masks are skipped).
 */
export async function readModelWeights(dir: string, config: ModelConfig): Promise<NamedTensors> {
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  let shards: Map<string, string[]>;
  try {
    const idx = JSON.parse(await readFile(index, 'utf8')) as { weight_map?: Record<string, string> };
    if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new CheckpointError(`${index}: field "weight_map" is missing`);
    shards = new Map();
    for (const [name, shard] of Object.entries(idx.weight_map)) {
      if (!shards.has(shard)) shards.set(shard, []);
      shards.get(shard)!.push(name);
    }
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CheckpointError(`${index}: ${(err as Error).message}`);
    shards = new Map([['model.safetensors', []]]);
  }
  const layout = parameterLayout(config);
  const out: NamedTensors = new Map();
  for (const [shard, names] of shards) {
    const file = join(dir, shard);
    const bytes = await readModelFile(file, shard === 'model.safetensors' && names.length === 0 ? `expected ${single} or ${index}` : `listed in ${index}`);
    let header;
    try {
      header = readSafetensorsHeader(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
    } catch (err) {
      throw new CheckpointError((err as Error).message);
    }
    for (const name of names) {
      if (!header.entries.has(name)) throw new CheckpointError(`${file}: tensor "${name}" listed in ${index} is missing`);
    }
    for (const name of header.entries.keys()) {
      if (isIgnoredBuffer(name)) continue;
      const canon = canonicalName(config, name);
      if (canon === 'lm_head.weight' && config.tieWordEmbeddings) continue; // tied: the embedding is the head
      const expected = layout.tensors.get(canon);
      if (!expected) throw new CheckpointError(`${file}: unexpected tensor "${name}" for model_type ${config.modelType}`);
      const entry = header.entries.get(name)!;
      if (entry.shape.length !== expected.length || entry.shape.some((v, i) => v !== expected[i])) {
        throw new CheckpointError(`${file}: tensor "${name}" has shape [${entry.shape.join(', ')}], expected [${expected.join(', ')}] from config.json`);
      }
      let t: HostTensor;
      try {
        t = decodeSafetensorsEntry(bytes, header, name, file);
      } catch (err) {
        throw new CheckpointError((err as Error).message);
      }
      out.set(canon, t);
    }
  }
  for (const name of layout.tensors.keys()) {
    if (!out.has(name)) throw new CheckpointError(`${dir}: checkpoint lacks tensor "${name}" required by config.json (model_type ${config.modelType})`);
  }
  return out;
}

/**
 * Writes a model directory in the layout `save_pretrained` produces: config.json and a single
 * model.safetensors (F32, `{"format": "pt"}` metadata), plus tokenizer files copied from `tokenizerDir`.
 */
export async function writeModelDir(
  dir: string,
  config: ModelConfig,
  weights: NamedTensors,
  opts: { tokenizerDir?: string; dtype?: 'F32' | 'F16' | 'BF16' } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const layout = parameterLayout(config);
  const ordered: NamedTensors = new Map();
  for (const [name, shape] of layout.tensors) {
    const t = weights.get(name);
    if (!t) throw new RangeError(`writeModelDir: weights lack "${name}"`);
    if (t.shape.join() !== shape.join()) throw new RangeError(`writeModelDir: "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    ordered.set(name, t);
  }
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(config.raw, null, 2)}\n`);
  await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(ordered, { dtype: opts.dtype ?? 'F32', metadata: { format: 'pt' } }));
  if (opts.tokenizerDir && opts.tokenizerDir !== dir) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      await copyFile(join(opts.tokenizerDir, f), join(dir, f)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' || f === 'tokenizer.json') throw err;
      });
    }
  }
}
