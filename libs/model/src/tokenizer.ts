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
  /** Id of the beginning-of-sequence token, if tokenizer_config.json names one that exists. */
  readonly bosTokenId?: number;
  /** The special tokens' text as tokenizer_config.json names them (what chat templates print). */
  readonly bosToken?: string;
  readonly eosToken?: string;
  /** tokenizer_config.json `add_bos_token` (Llama-style tokenizers put BOS before every text). */
  readonly addBosToken?: boolean;
  /** tokenizer_config.json `chat_template` (Jinja), if any (a named list takes the `default` one). */
  readonly chatTemplate?: string;
}

function tokenText(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof (v as { content?: unknown } | undefined)?.content === 'string' ? (v as { content: string }).content : undefined;
}

function chatTemplateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v as Array<{ name?: string; template?: string }>;
    return (named.find((t) => t.name === 'default') ?? named[0])?.template;
  }
  return undefined;
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
  const eosName = tokenText(config.eos_token);
  const bosName = tokenText(config.bos_token);
  const added = (json.added_tokens as Array<{ id: number; content: string }> | undefined) ?? [];
  const eos = added.find((t) => t.content === (eosName ?? '<|endoftext|>'));
  const bos = bosName === undefined ? undefined : added.find((t) => t.content === bosName);
  const chatTemplate = chatTemplateOf(config.chat_template);
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
    vocabSize: maxId + 1,
    eosTokenId: eos?.id,
    ...(bos ? { bosTokenId: bos.id, bosToken: bos.content } : {}),
    ...(eos ? { eosToken: eos.content } : {}),
    ...(config.add_bos_token === true ? { addBosToken: true } : {}),
    ...(chatTemplate !== undefined ? { chatTemplate } : {}),
  };
}
