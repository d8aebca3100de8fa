/**
 * Training data: plain text or JSONL files, tokenized and packed into fixed-length sequences.
 *
 * Packing convention: the token stream is cut into windows of seqLen + 1 tokens with stride
 * seqLen, so window i holds inputs tokens[i*seqLen .. i*seqLen+seqLen-1] and, shifted by one, their
 * targets; consecutive windows share one token and every token after the first is a target
 * exactly once. A trailing remainder shorter than seqLen + 1 is dropped. Documents are joined with
 * the tokenizer's end-of-text token when it has one.
 */
import { readFile } from 'node:fs/promises';
import type { CausalLM } from '@fedlora/model';

/** Tokenizes `text` (no special tokens) and packs it into windows of seqLen + 1 tokens. */
export function tokenizeToSequences(model: Pick<CausalLM, 'tokenizer' | 'config'>, text: string | string[], seqLen: number): Int32Array[] {
  if (!Number.isInteger(seqLen) || seqLen < 1 || seqLen > model.config.maxPositions) {
    throw new RangeError(`seqLen must be an integer in [1, ${model.config.maxPositions}] (the context length), received ${seqLen}`);
  }
  const docs = Array.isArray(text) ? text : [text];
  const eos = model.tokenizer.eosTokenId;
  const ids: number[] = [];
  docs.forEach((d, i) => {
    if (i > 0 && eos !== undefined) ids.push(eos);
    for (const id of model.tokenizer.encode(d)) ids.push(id);
  });
  return packTokens(ids, seqLen);
}

/** Packs a token stream into windows of seqLen + 1 with stride seqLen (see the file comment). */
export function packTokens(ids: ArrayLike<number>, seqLen: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let start = 0; start + seqLen + 1 <= ids.length; start += seqLen) {
    out.push(Int32Array.from({ length: seqLen + 1 }, (_, j) => ids[start + j]!));
  }
  return out;
}

/** How to read a data file. */
export interface TextFileOptions {
  /** `text` (whole file, default unless the name ends in .jsonl) or `jsonl` (one JSON object a line). */
  format?: 'text' | 'jsonl';
  /** JSONL field holding the text; default `text`. */
  field?: string;
}

/** Reads a plain-text file as one document, or a JSONL file as one document per line. */
export async function readTextDocuments(file: string, opts: TextFileOptions = {}): Promise<string[]> {
  const format = opts.format ?? (file.endsWith('.jsonl') ? 'jsonl' : 'text');
  const content = await readFile(file, 'utf8');
  if (format === 'text') return [content];
  if (format !== 'jsonl') throw new RangeError(`format must be "text" or "jsonl", received ${JSON.stringify(format)}`);
  const field = opts.field ?? 'text';
  const docs: string[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new SyntaxError(`${file}:${i + 1}: invalid JSON (${(err as Error).message})`);
    }
    const v = (obj as Record<string, unknown> | null)?.[field];
    if (typeof v !== 'string') throw new TypeError(`${file}:${i + 1}: field "${field}" must be a string, received ${JSON.stringify(v)}`);
    docs.push(v);
  });
  return docs;
}

/** Splits sequences into train and held-out parts: the last `fraction` (at least one) is held out. */
export function splitHeldOut<T>(items: T[], fraction: number): { train: T[]; heldOut: T[] } {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError(`fraction must be in (0, 1), received ${fraction}`);
  if (items.length < 2) throw new RangeError(`need at least 2 sequences to hold some out, received ${items.length}`);
  const n = Math.min(items.length - 1, Math.max(1, Math.round(items.length * fraction)));
  return { train: items.slice(0, items.length - n), heldOut: items.slice(items.length - n) };
}
