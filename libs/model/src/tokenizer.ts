/**
 * Tokenizer loading through `@huggingface/tokenizers` (tokenizer.json + tokenizer_config.json),
 * never a hand-written tokenizer: the library reproduces the Rust `tokenizers` behaviour.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** What the engine needs from a tokenizer. */
export interface TextTokenizer {
  /** Token ids of `text`, without special tokens. */
  encode(text: string): number[];
  /** Text of `ids`, special tokens skipped. */
  decode(ids: number[]): string;
  /** Number of ids the tokenizer can emit (model vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Id of the end-of-text token, if the tokenizer has one. */
  readonly eosTokenId?: number;
}

/** Loads `tokenizer.json` (and `tokenizer_config.json` if present) from a model directory. */
export async function loadTokenizer(dir: string): Promise<TextTokenizer> {
  const file = join(dir, 'tokenizer.json');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `${file}: missing file (a model directory needs tokenizer.json)` : `${file}: ${e.message}`);
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${join(dir, 'tokenizer_config.json')}: ${(err as Error).message}`);
  }
  return fromJson(json, config);
}

/** Builds a tokenizer from parsed tokenizer.json / tokenizer_config.json objects. */
export function fromJson(json: Record<string, unknown>, config: Record<string, unknown> = {}): TextTokenizer {
  const tok = new Tokenizer(json, config);
  const model = json.model as { vocab?: Record<string, number> | Array<unknown> } | undefined;
  let maxId = -1;
  if (model?.vocab && !Array.isArray(model.vocab)) for (const id of Object.values(model.vocab)) maxId = Math.max(maxId, id);
  else if (Array.isArray(model?.vocab)) maxId = model.vocab.length - 1;
  for (const t of (json.added_tokens as Array<{ id: number }> | undefined) ?? []) maxId = Math.max(maxId, t.id);
  const eosName = typeof config.eos_token === 'string' ? config.eos_token : (config.eos_token as { content?: string } | undefined)?.content;
  const added = (json.added_tokens as Array<{ id: number; content: string }> | undefined) ?? [];
  const eos = added.find((t) => t.content === (eosName ?? '<|endoftext|>'));
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    vocabSize: maxId + 1,
    eosTokenId: eos?.id,
  };
}
