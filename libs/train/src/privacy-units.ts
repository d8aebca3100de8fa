/**
 * Training data by privacy unit: what DP-SGD samples and clips as one (Chua et al. 2024, "Mind the
 * Privacy Unit! User-Level Differential Privacy for Language Model Fine-Tuning"). A unit is
 *
 * - `document` (default): one line of a text file, or one JSONL record;
 * - `field`: all records that share the value of a JSONL field (e.g. `patient_id`), wherever they
 *   sit in the file (user-level DP inside an institution);
 * - `sequence`: one packed training sequence (the text is packed as for plain training), only
 *   when asked for: a document spanning k sequences is then protected only at group-privacy cost k.
 *
 * Packing never mixes units: each unit's records are tokenized and joined (with the end-of-text
 * token between records, when the tokenizer has one) and cut into windows of seqLen + 1 tokens with
 * stride seqLen as in `packTokens`; a unit's remainder of at least 2 tokens is kept as a shorter
 * last sequence (DP-SGD pads it and masks the padding), so a short document is never dropped.
 * Each sequence carries the index of its unit.
 */
import { readFile } from 'node:fs/promises';
import type { CausalLM } from '@fedlora/model';
import type { RecordUnit } from '@fedlora/privacy';
import { packTokens } from './data.js';

/** One record of the data file, with the value of the unit field for `field` units. */
export interface UnitRecord {
  text: string;
  /** The value of `privacyUnitField` (as a string), for `field` units. */
  key?: string;
}

/** Which privacy unit and, for `field`, which field. */
export interface PrivacyUnitSpec {
  unit: RecordUnit;
  /** For `field`: the JSONL field whose value names a unit (e.g. `patient_id`). */
  field?: string;
}

/** Training sequences grouped by privacy unit. */
export interface UnitData {
  /** Sequences of 2 .. seqLen + 1 tokens; no sequence mixes two units. */
  sequences: Int32Array[];
  /** unitOf[i]: the unit of sequence i. */
  unitOf: Int32Array;
  /** The sequences of each unit (indices into `sequences`), in order. */
  units: number[][];
  spec: PrivacyUnitSpec;
}

/** Throws unless `spec` names a record-level unit (and its field for `field`). */
export function validateUnitSpec(spec: PrivacyUnitSpec): void {
  if (spec.unit !== 'document' && spec.unit !== 'field' && spec.unit !== 'sequence') {
    throw new RangeError(`privacyUnit must be "document", "field" or "sequence", received ${JSON.stringify(spec.unit)}`);
  }
  if (spec.unit === 'field' && !spec.field) throw new RangeError('privacyUnit "field" needs privacyUnitField (the JSONL field naming a unit, e.g. "patient_id"), received nothing');
  if (spec.unit !== 'field' && spec.field !== undefined) throw new RangeError(`privacyUnitField is only for privacyUnit "field", received it with ${JSON.stringify(spec.unit)}`);
}

/**
 * Reads the records of a data file: each non-empty line of a text file, or each JSONL object
 * (its `field` holds the text; with `unitField`, that field's value is the record's unit key).
 */
export async function readUnitRecords(file: string, opts: { format?: 'text' | 'jsonl'; field?: string; unitField?: string } = {}): Promise<UnitRecord[]> {
  const format = opts.format ?? (file.endsWith('.jsonl') ? 'jsonl' : 'text');
  const content = await readFile(file, 'utf8');
  if (format === 'text') {
    if (opts.unitField !== undefined) throw new RangeError(`${file}: privacyUnitField needs a JSONL file (a plain-text line has no fields)`);
    return content.split('\n').filter((l) => l.trim() !== '').map((text) => ({ text }));
  }
  if (format !== 'jsonl') throw new RangeError(`format must be "text" or "jsonl", received ${JSON.stringify(format)}`);
  const field = opts.field ?? 'text';
  const out: UnitRecord[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: Record<string, unknown> | null;
    try {
      obj = JSON.parse(line) as Record<string, unknown> | null;
    } catch (err) {
      throw new SyntaxError(`${file}:${i + 1}: invalid JSON (${(err as Error).message})`);
    }
    const text = obj?.[field];
    if (typeof text !== 'string') throw new TypeError(`${file}:${i + 1}: field "${field}" must be a string, received ${JSON.stringify(text)}`);
    if (opts.unitField === undefined) return void out.push({ text });
    const key = obj?.[opts.unitField];
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new TypeError(`${file}:${i + 1}: privacy unit field "${opts.unitField}" must be a string or a number, received ${JSON.stringify(key)}: every record must name its unit`);
    }
    out.push({ text, key: String(key) });
  });
  return out;
}

/** Records grouped into units: one per record, or one per distinct key (in order of first appearance). */
export function groupRecords(records: readonly UnitRecord[], spec: PrivacyUnitSpec): UnitRecord[][] {
  validateUnitSpec(spec);
  if (spec.unit !== 'field') return records.map((r) => [r]);
  const groups = new Map<string, UnitRecord[]>();
  records.forEach((r, i) => {
    if (r.key === undefined) throw new RangeError(`record ${i} has no value for the privacy unit field "${spec.field}"`);
    const g = groups.get(r.key);
    if (g) g.push(r);
    else groups.set(r.key, [r]);
  });
  return [...groups.values()];
}

/** Packs records into sequences that never mix privacy units (see the file comment). */
export function packUnits(model: Pick<CausalLM, 'tokenizer' | 'config'>, records: readonly UnitRecord[], seqLen: number, spec: PrivacyUnitSpec): UnitData {
  if (!Number.isInteger(seqLen) || seqLen < 1 || seqLen > model.config.maxPositions) {
    throw new RangeError(`seqLen must be an integer in [1, ${model.config.maxPositions}] (the context length), received ${seqLen}`);
  }
  const eos = model.tokenizer.eosTokenId;
  const tokens = (group: readonly UnitRecord[]): number[] => {
    const ids: number[] = [];
    group.forEach((r, i) => {
      if (i > 0 && eos !== undefined) ids.push(eos);
      for (const id of model.tokenizer.encode(r.text)) ids.push(id);
    });
    return ids;
  };
  const sequences: Int32Array[] = [];
  const units: number[][] = [];
  if (spec.unit === 'sequence') {
    validateUnitSpec(spec);
    for (const s of packTokens(tokens(records), seqLen)) {
      units.push([sequences.length]);
      sequences.push(s);
    }
  } else {
    for (const group of groupRecords(records, spec)) {
      const own = packUnitTokens(tokens(group), seqLen);
      if (own.length === 0) continue; // fewer than 2 tokens: nothing to predict
      units.push(own.map((_, j) => sequences.length + j));
      sequences.push(...own);
    }
  }
  const unitOf = new Int32Array(sequences.length);
  units.forEach((seqs, u) => seqs.forEach((i) => (unitOf[i] = u)));
  return { sequences, unitOf, units, spec };
}

/** One unit's windows of seqLen + 1 (stride seqLen), plus its remainder of >= 2 tokens as a shorter last window. */
export function packUnitTokens(ids: readonly number[], seqLen: number): Int32Array[] {
  const out = packTokens(ids, seqLen);
  const start = out.length * seqLen;
  if (ids.length - start >= 2) out.push(Int32Array.from(ids.slice(start)));
  return out;
}

/**
 * Splits records into a training part and a held-out part by whole units: the last `fraction`
 * of the units (at least one) is held out, so no unit is both trained on and evaluated.
 */
export function splitRecordsByUnit(records: readonly UnitRecord[], spec: PrivacyUnitSpec, fraction: number): { train: UnitRecord[]; heldOut: UnitRecord[] } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`fraction must be in (0, 1), received ${fraction}`);
  const groups = groupRecords(records, spec.unit === 'sequence' ? { unit: 'document' } : spec);
  if (groups.length < 2) throw new RangeError(`need at least 2 units (${spec.unit === 'field' ? spec.field : 'records'}) to hold some out, received ${groups.length}`);
  const n = Math.min(groups.length - 1, Math.max(1, Math.round(groups.length * fraction)));
  return { train: groups.slice(0, groups.length - n).flat(), heldOut: groups.slice(groups.length - n).flat() };
}
