/**
 * Saving and restoring a training run (adapter, AdamW moments, step) as one safetensors file, so
 * local training can resume after an interruption exactly where it stopped.
 * Tensor names: `adapter/<PEFT name>`, `adam_m/<PEFT name>`, `adam_v/<PEFT name>`; metadata `step`.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { NamedTensors } from '@fedlora/tensor';
import { parseSafetensors, serializeSafetensors } from '@fedlora/tensor';
import type { TrainState } from './trainer.js';

/** Writes `state` to `file` atomically (temp file + rename). */
export async function saveTrainState(file: string, state: TrainState): Promise<void> {
  const t: NamedTensors = new Map();
  for (const [name, a] of state.adapter) {
    const m = state.optimizer.m.get(name);
    const v = state.optimizer.v.get(name);
    if (!m || !v) throw new RangeError(`saveTrainState: optimizer state lacks moments for "${name}"`);
    t.set(`adapter/${name}`, a);
    t.set(`adam_m/${name}`, { shape: a.shape, data: m });
    t.set(`adam_v/${name}`, { shape: a.shape, data: v });
  }
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, serializeSafetensors(t, { metadata: { format: 'fedlora-train-state', step: String(state.optimizer.step) } }));
  await rename(tmp, file);
}

/** Reads a state written by `saveTrainState`; errors name the file. */
export async function loadTrainState(file: string): Promise<TrainState> {
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${file}: ${e.code === 'ENOENT' ? 'missing file' : e.message}`);
  });
  const { tensors, metadata } = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file);
  if (metadata.format !== 'fedlora-train-state') throw new Error(`${file}: metadata "format" must be "fedlora-train-state", received ${JSON.stringify(metadata.format)}`);
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) throw new Error(`${file}: metadata "step" must be a non-negative integer, received ${JSON.stringify(metadata.step)}`);
  const adapter: NamedTensors = new Map();
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    const slash = name.indexOf('/');
    const kind = name.slice(0, slash);
    const key = name.slice(slash + 1);
    if (kind === 'adapter') adapter.set(key, t);
    else if (kind === 'adam_m') m.set(key, t.data);
    else if (kind === 'adam_v') v.set(key, t.data);
    else throw new Error(`${file}: unexpected tensor "${name}"`);
  }
  for (const key of adapter.keys()) if (!m.has(key) || !v.has(key)) throw new Error(`${file}: missing AdamW moments for "${key}"`);
  return { adapter, optimizer: { step, m, v } };
}
