/**
 * Instruction data: JSONL in the three formats people fine-tune on, turned into one training
 * sequence per example with the loss only on the completion (assistant) tokens.
 *
 * - `prompt-completion`: {"prompt", "completion"} (TRL's prompt-completion format): the prompt
 *   text, then the completion followed by the tokenizer's EOS token (trained, so the model learns
 *   to stop); BOS first when tokenizer_config.json sets `add_bos_token`.
 * - `alpaca`: {"instruction", "input", "output"} with Stanford Alpaca's prompt template
 *   (tatsu-lab/stanford_alpaca, train.py PROMPT_DICT), then as prompt-completion.
 * - `messages`: {"messages": [{role, content}, ...]} rendered with the model's chat template;
 *   every assistant turn is trained, everything else is prompt (chat-template.ts).
 *
 * Segments are tokenized one by one (without special-token insertion; special tokens written in
 * the text, as templates do, are recognised) and concatenated, so a token never straddles a
 * prompt/completion boundary. Examples are not packed together. An example longer than the
 * context loses prompt tokens from the left; if that would drop a completion token it is skipped
 * instead. Both are counted, never silent.
 */
import { readFile } from 'node:fs/promises';
import { assertChatMessages, chatSegments, type TextSegment, type TextTokenizer } from '@fedlora/model';
import { maskedId, withLossMask } from './loss-mask.js';

/** The instruction-data formats of `data.format`. */
export const INSTRUCT_FORMATS = ['prompt-completion', 'messages', 'alpaca'] as const;
/** One of `INSTRUCT_FORMATS`. */
export type InstructFormat = (typeof INSTRUCT_FORMATS)[number];

/** True when `f` names an instruction format (not plain text). */
export function isInstructFormat(f: unknown): f is InstructFormat {
  return (INSTRUCT_FORMATS as readonly unknown[]).includes(f);
}

const ALPACA_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
const ALPACA_NO_INPUT = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n';

/** Reads a JSONL file into objects, with errors naming file and line. */
export async function readJsonl(file: string): Promise<Record<string, unknown>[]> {
  const content = await readFile(file, 'utf8');
  const out: Record<string, unknown>[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new SyntaxError(`${file}:${i + 1}: invalid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new TypeError(`${file}:${i + 1}: expected a JSON object, received ${JSON.stringify(obj)}`);
    out.push(obj as Record<string, unknown>);
  });
  return out;
}

function str(obj: Record<string, unknown>, key: string, where: string, optional = false): string {
  const v = obj[key];
  if (optional && v === undefined) return '';
  if (typeof v !== 'string') throw new TypeError(`${where}: field "${key}" must be a string, received ${JSON.stringify(v)}`);
  return v;
}

/** The prompt and completion segments of one record in `format` (`where` names it in errors). */
export function instructSegments(tokenizer: TextTokenizer, record: Record<string, unknown>, format: InstructFormat, where = 'record'): TextSegment[] {
  if (format === 'messages') {
    assertChatMessages(record.messages, `${where}: messages`);
    try {
      return chatSegments(tokenizer, record.messages);
    } catch (err) {
      throw new (err instanceof TypeError ? TypeError : RangeError)(`${where}: ${(err as Error).message}`);
    }
  }
  let prompt: string;
  let completion: string;
  if (format === 'alpaca') {
    const instruction = str(record, 'instruction', where);
    const input = str(record, 'input', where, true);
    prompt = (input ? ALPACA_WITH_INPUT : ALPACA_NO_INPUT).replace('{instruction}', instruction).replace('{input}', input);
    completion = str(record, 'output', where);
  } else if (format === 'prompt-completion') {
    prompt = str(record, 'prompt', where);
    completion = str(record, 'completion', where);
  } else {
    throw new RangeError(`format must be one of ${INSTRUCT_FORMATS.join(', ')}, received ${JSON.stringify(format)}`);
  }
  return [
    { text: (tokenizer.addBosToken ? (tokenizer.bosToken ?? '') : '') + prompt, train: false },
    { text: completion + (tokenizer.eosToken ?? ''), train: true },
  ];
}

/** Token ids of the segments and, per token, whether it is a trained (completion) token. */
export function tokenizeSegments(tokenizer: TextTokenizer, segments: readonly TextSegment[]): { ids: number[]; train: boolean[] } {
  const ids: number[] = [];
  const train: boolean[] = [];
  for (const s of segments) {
    for (const id of tokenizer.encode(s.text)) {
      ids.push(id);
      train.push(s.train);
    }
  }
  return { ids, train };
}

/** Sequences with loss masks, and what had to be cut. */
export interface InstructSequences {
  /** One masked sequence per kept example (unpadded: lengths differ). */
  sequences: Int32Array[];
  /** Examples whose prompt was cut from the left to fit the context. */
  truncated: number;
  /** Examples dropped: the completion alone does not fit, or nothing to train on. */
  skipped: number;
}

/**
 * One masked sequence of at most `maxTokens` tokens from token ids and their trained flags:
 * prompt tokens cut from the left when too long; undefined (skip) when that would drop a trained
 * token or nothing is left to train on.
 */
export function fitToContext(ids: readonly number[], train: readonly boolean[], maxTokens: number): { sequence?: Int32Array; truncated: boolean } {
  if (!Number.isInteger(maxTokens) || maxTokens < 2) throw new RangeError(`maxTokens must be an integer >= 2, received ${maxTokens}`);
  let drop = 0;
  if (ids.length > maxTokens) {
    drop = ids.length - maxTokens;
    // Tokens 0..drop are lost as targets (token `drop` becomes the first input): all must be prompt.
    if (train.slice(0, drop + 1).some(Boolean)) return { truncated: false };
  }
  if (!train.slice(drop + 1).some(Boolean)) return { truncated: false };
  return { sequence: withLossMask(ids.slice(drop), train.slice(drop)), truncated: drop > 0 };
}

/**
 * Masked sequences of at most `maxTokens` tokens (the context + 1: inputs and shifted targets)
 * from examples given as segments; see the file comment for the truncation rule.
 */
export function maskedSequences(tokenizer: TextTokenizer, examples: readonly TextSegment[][], maxTokens: number): InstructSequences {
  const sequences: Int32Array[] = [];
  let truncated = 0;
  let skipped = 0;
  for (const segs of examples) {
    const { ids, train } = tokenizeSegments(tokenizer, segs);
    const r = fitToContext(ids, train, maxTokens);
    if (!r.sequence) skipped++;
    else {
      sequences.push(r.sequence);
      if (r.truncated) truncated++;
    }
  }
  return { sequences, truncated, skipped };
}

/**
 * Right-pads masked sequences to a common length (default: the longest) with masked padding
 * tokens (EOS, or 0), so they batch like packed windows; padding comes after every real token of
 * its row, so causal attention keeps it from changing any real position.
 */
export function padMasked(sequences: readonly Int32Array[], padId: number, length?: number): Int32Array[] {
  const len = length ?? Math.max(0, ...sequences.map((s) => s.length));
  return sequences.map((s, i) => {
    if (s.length > len) throw new RangeError(`sequence ${i} holds ${s.length} tokens, more than the padded length ${len}`);
    const out = new Int32Array(len).fill(maskedId(padId));
    out.set(s);
    return out;
  });
}

/** Reads a JSONL instruction file in `format` and returns each record's segments. */
export async function readInstructExamples(file: string, tokenizer: TextTokenizer, format: InstructFormat): Promise<TextSegment[][]> {
  const records = await readJsonl(file);
  return records.map((r, i) => instructSegments(tokenizer, r, format, `${file}: record ${i + 1}`));
}

/**
 * Training sequences of an instruction file: masked, truncated to seqLen + 1 tokens, padded to
 * the longest kept example.
 */
export function instructTrainingSequences(tokenizer: TextTokenizer, examples: readonly TextSegment[][], seqLen: number): InstructSequences {
  const r = maskedSequences(tokenizer, examples, seqLen + 1);
  return { ...r, sequences: padMasked(r.sequences, tokenizer.eosTokenId ?? 0) };
}
