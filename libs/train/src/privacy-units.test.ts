import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, defaultLoraConfig, initBackend, initLoraAdapter, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { privateLoraGradient } from './dp-sgd-grads.js';
import { boundedUnitBatch, trainLocalDpSgd } from './dp-sgd.js';
import { packUnits, readUnitRecords, splitRecordsByUnit, type UnitRecord } from './privacy-units.js';
import { SAMPLE_TEXT, tinyGpt2 } from './test-model.js';
import { toTensors } from './trainer.js';

let model: CausalLM;
let lora: LoraConfig;
let adapter: NamedTensors;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  model = tinyGpt2();
  lora = defaultLoraConfig(model);
  adapter = initLoraAdapter(model, lora, seededRandomBytes('unit-a'));
  const rng = seededRandomBytes('unit-b');
  for (const [name, t] of adapter) if (name.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
});
afterAll(() => model?.dispose());

const flat = (a: NamedTensors): Float64Array => Float64Array.from([...a.values()].flatMap((t) => [...t.data]));
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const variables = (a: NamedTensors) => new Map([...a].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));

/** Brute force: the gradient of one sequence's mean loss. */
function sequenceGradient(vars: Map<string, tf.Variable>, seq: Int32Array): Float64Array {
  const names = [...vars.keys()];
  const { inputs, targets } = toTensors([seq], seq.length - 1);
  const g = tf.grads((...xs: tf.Tensor[]) => crossEntropy(model.forward(inputs, { lora: loraRuntime(model, lora, new Map(names.map((n, i) => [n, xs[i]!]))) }), targets))(names.map((n) => vars.get(n)!));
  const out = Float64Array.from(g.flatMap((t) => [...(t.dataSync() as Float32Array)]));
  tf.dispose([inputs, targets, ...g]);
  return out;
}

describe('packing by privacy unit', () => {
  it('never mixes documents in a sequence, keeps a short remainder, and numbers each sequence with its unit', () => {
    const records: UnitRecord[] = [{ text: SAMPLE_TEXT }, { text: 'Call me Ishmael.' }, { text: SAMPLE_TEXT.slice(0, 60) }];
    const d = packUnits(model, records, 8, { unit: 'document' });
    expect(d.units.length).toBe(3);
    expect(d.units[0]!.length).toBeGreaterThan(3); // a long document spans several sequences
    const own = model.tokenizer.encode('Call me Ishmael.');
    expect(d.units[1]!.map((i) => [...d.sequences[i]!])).toEqual([own.slice(0, 9)].filter((s) => s.length >= 2).concat(own.length > 9 ? [own.slice(8)] : []));
    d.units.forEach((seqs, u) => seqs.forEach((i) => expect(d.unitOf[i]).toBe(u)));
    expect(d.sequences.every((s) => s.length >= 2 && s.length <= 9)).toBe(true);
  });

  it('groups the records of one field value into one unit, across the file (field units)', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'units-')), 'notes.jsonl');
    writeFileSync(f, ['{"patient_id":"p1","text":"Call me Ishmael."}', '{"patient_id":7,"text":"Some years ago."}', '{"patient_id":"p1","text":"Never mind how long."}'].join('\n'));
    const records = await readUnitRecords(f, { unitField: 'patient_id' });
    expect(records.map((r) => r.key)).toEqual(['p1', '7', 'p1']);
    const d = packUnits(model, records, 30, { unit: 'field', field: 'patient_id' });
    expect(d.units.length).toBe(2);
    const eos = model.tokenizer.eosTokenId;
    const p1 = [...model.tokenizer.encode('Call me Ishmael.'), ...(eos !== undefined ? [eos] : []), ...model.tokenizer.encode('Never mind how long.')];
    expect(d.units[0]!.flatMap((i, k) => [...d.sequences[i]!].slice(k === 0 ? 0 : 1))).toEqual(p1);
    expect(splitRecordsByUnit(records, { unit: 'field', field: 'patient_id' }, 0.5)).toEqual({ train: [records[0], records[2]], heldOut: [records[1]] });
    await expect(readUnitRecords(f, { unitField: 'hospital' })).rejects.toThrow(/privacy unit field "hospital" must be a string or a number/);
  });

  it('reads one document per non-empty line of a text file', async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'units-')), 'notes.txt');
    writeFileSync(f, 'first note\n\nsecond note\n');
    expect(await readUnitRecords(f)).toEqual([{ text: 'first note' }, { text: 'second note' }]);
  });
});

describe('DP-SGD over units', () => {
  it('clips a document split into several sequences as ONE unit: its summed gradient has norm <= C (ghost and per-example)', async () => {
    const d = packUnits(model, [{ text: SAMPLE_TEXT }], 8, { unit: 'document' });
    const seqs = d.units[0]!.slice(0, 4).map((i) => d.sequences[i]!);
    const vars = variables(adapter);
    const grads = seqs.map((s) => sequenceGradient(vars, s));
    const sum = grads[0]!.map((_, k) => grads.reduce((a, g) => a + g[k]!, 0));
    const clip = 0.25 * Math.min(...grads.map(norm)); // each sequence alone is clipped, and their sum
    for (const method of ['ghost', 'per-example'] as const) {
      const unit = await privateLoraGradient(model, lora, vars, seqs, { clipNorm: clip, noiseMultiplier: 0, expectedBatchSize: 1, rng: seededRandomBytes(1), dropoutSeed: 0, method, units: [0, 0, 0, 0] });
      const got = flat(unit.gradient);
      expect(norm(got)).toBeLessThanOrEqual(clip * (1 + 2 ** -23)); // the float64 sum is <= C; the float32 result rounds it
      expect(norm(got)).toBeGreaterThan(0.999 * clip);
      expect(unit.clippedFraction).toBe(1);
      // The direction is the unit's summed gradient, not a sum of separately clipped ones.
      const cos = got.reduce((a, v, k) => a + v * sum[k]!, 0) / (norm(got) * norm(sum));
      expect(cos).toBeGreaterThan(1 - 1e-5);
      const separate = flat((await privateLoraGradient(model, lora, vars, seqs, { clipNorm: clip, noiseMultiplier: 0, expectedBatchSize: 1, rng: seededRandomBytes(1), dropoutSeed: 0, method })).gradient);
      expect(norm(separate)).toBeGreaterThan(1.5 * clip); // as four units they would move the sum by more than C
    }
    vars.forEach((v) => v.dispose());
  });

  it('Poisson-samples units, not sequences, caps the sequences of a unit and counts what the cap dropped', async () => {
    const records = Array.from({ length: 6 }, (_, i) => ({ text: SAMPLE_TEXT.slice(i * 7) }));
    const d = packUnits(model, records, 8, { unit: 'document' });
    expect(d.units.every((u) => u.length > 2)).toBe(true);
    const steps: Array<{ batchSize: number; droppedSequences: number }> = [];
    const r = await trainLocalDpSgd(model, lora, adapter, d, { steps: 6, samplingRate: 1, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-3, maxSequencesPerUnit: 2, rng: seededRandomBytes('units'), onStep: (s) => steps.push(s) });
    const extra = d.units.reduce((n, u) => n + u.length - 2, 0);
    expect(steps.every((s) => s.batchSize === 6 && s.droppedSequences === extra)).toBe(true);
    expect(r.numExamples).toBe(6);
    expect(r.sampledSequences).toBe(6 * 12);
    expect(r.droppedSequences).toBe(6 * extra);
  });

  it('draws the capped sequences of a unit uniformly', () => {
    const rng = seededRandomBytes('cap');
    const counts = new Array<number>(5).fill(0);
    const trials = 4000;
    for (let t = 0; t < trials; t++) for (const i of boundedUnitBatch([[0, 1, 2, 3, 4]], 2, rng).sequences) counts[i]!++;
    const expected = (trials * 2) / 5;
    const sd = Math.sqrt(trials * 0.4 * 0.6);
    for (const c of counts) expect(Math.abs(c - expected)).toBeLessThan(5 * sd);
  });
});
