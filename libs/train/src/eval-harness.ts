/**
 * An evaluation harness in the manner of EleutherAI's lm-evaluation-harness (Gao et al. 2021,
 * github.com/EleutherAI/lm-evaluation-harness).
 *
 * Multiple choice by log-likelihood (lm-eval `output_type: multiple_choice`): the context is
 * "Question: {question}\nAnswer:" (or the record's own `context`), each choice's continuation is
 * " {choice}" (lm-eval's default target delimiter); its score is the sum of the log-probabilities
 * of the continuation's tokens given the context. The continuation's tokens are those of
 * encode(context + continuation) after the first len(encode(context)) (lm-eval `_encode_pair`).
 * acc: the argmax score is the answer; acc_norm: the argmax of score / len(choice) with len the
 * choice's length in characters (Unicode code points, Python's len as lm-eval's
 * `process_results` uses; the byte length for ASCII). Ties go to the first choice (numpy argmax).
 *
 * Exact match (lm-eval `generate_until`): greedy generation from the prompt until EOS or a
 * newline, compared with the answer after trimming whitespace.
 */
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { disposeLoraRuntime, generate, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import { fitToContext } from './instruct-data.js';
import { scoreSequences, type ScoreOptions } from './scoring.js';

/** One multiple-choice question: `answer` is the index of the right choice (or its text). */
export interface McqItem {
  question: string;
  choices: string[];
  answer: number;
  /** The context as given, instead of "Question: {question}\nAnswer:". */
  context?: string;
}

/** Result of `evaluateMcq`. */
export interface McqResult {
  acc: number;
  acc_norm: number;
  examples: number;
  /** Questions whose context + choice does not fit the model's context even after cutting the context from the left. */
  skipped: number;
  /** Per question: the index chosen by acc and by acc_norm. */
  predictions: Array<{ pred: number; predNorm: number; answer: number }>;
}

/** Validates one parsed JSONL record as a multiple-choice item (`where` names it in errors). */
export function parseMcqItem(r: Record<string, unknown>, where: string): McqItem {
  if (typeof r.question !== 'string') throw new TypeError(`${where}: field "question" must be a string, received ${JSON.stringify(r.question)}`);
  if (!Array.isArray(r.choices) || r.choices.length < 2 || !r.choices.every((c) => typeof c === 'string')) {
    throw new TypeError(`${where}: field "choices" must be an array of at least 2 strings, received ${JSON.stringify(r.choices)}`);
  }
  const choices = r.choices as string[];
  const answer = typeof r.answer === 'string' ? choices.indexOf(r.answer) : r.answer;
  if (typeof answer !== 'number' || !Number.isInteger(answer) || answer < 0 || answer >= choices.length) {
    throw new RangeError(`${where}: field "answer" must be a choice index in [0, ${choices.length - 1}] or one of the choices, received ${JSON.stringify(r.answer)}`);
  }
  if (r.context !== undefined && typeof r.context !== 'string') throw new TypeError(`${where}: field "context" must be a string when present, received ${JSON.stringify(r.context)}`);
  return { question: r.question, choices, answer, ...(typeof r.context === 'string' ? { context: r.context } : {}) };
}

/** The context string lm-eval style tasks use for a question. */
export function mcqContext(item: McqItem): string {
  return item.context ?? `Question: ${item.question}\nAnswer:`;
}

/** Masked sequences [context | continuation] for every choice (lm-eval `_encode_pair`). */
function choiceSequence(model: CausalLM, context: string, choice: string): { ids: number[]; train: boolean[] } {
  const bos = model.tokenizer.addBosToken && model.tokenizer.bosTokenId !== undefined ? [model.tokenizer.bosTokenId] : [];
  const ctx = [...bos, ...model.tokenizer.encode(context)];
  const whole = [...bos, ...model.tokenizer.encode(context + ' ' + choice)];
  return { ids: whole, train: whole.map((_, i) => i >= ctx.length) };
}

/** acc and acc_norm of `items` by log-likelihood (see the file comment). */
export async function evaluateMcq(model: CausalLM, items: readonly McqItem[], opts: ScoreOptions = {}): Promise<McqResult> {
  const predictions: McqResult['predictions'] = [];
  let skipped = 0;
  for (const item of items) {
    const context = mcqContext(item);
    const encoded = item.choices.map((c) => choiceSequence(model, context, c));
    // Each choice as its own example: context cut from the left if needed, never the choice.
    const seqs = encoded.map((e) => fitToContext(e.ids, e.train, model.config.maxPositions + 1).sequence);
    if (seqs.some((s) => s === undefined)) {
      skipped++;
      continue;
    }
    const scores = await scoreSequences(model, seqs as Int32Array[], opts);
    const ll = Array.from(scores.logProb);
    const norm = ll.map((v, i) => v / Math.max(1, [...item.choices[i]!].length));
    predictions.push({ pred: argmax(ll), predNorm: argmax(norm), answer: item.answer });
  }
  const n = predictions.length;
  return {
    acc: n ? predictions.filter((p) => p.pred === p.answer).length / n : Number.NaN,
    acc_norm: n ? predictions.filter((p) => p.predNorm === p.answer).length / n : Number.NaN,
    examples: n,
    skipped,
    predictions,
  };
}

function argmax(v: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** One short-answer item for exact match. */
export interface ExactMatchItem {
  prompt: string;
  answer: string;
}

/** Validates one parsed JSONL record as an exact-match item. */
export function parseExactMatchItem(r: Record<string, unknown>, where: string): ExactMatchItem {
  for (const k of ['prompt', 'answer'] as const) {
    if (typeof r[k] !== 'string') throw new TypeError(`${where}: field "${k}" must be a string, received ${JSON.stringify(r[k])}`);
  }
  return { prompt: r.prompt as string, answer: r.answer as string };
}

/**
 * Exact match of greedy generations (see the file comment): the generation stops at EOS, at a
 * newline or after `maxNewTokens`; prediction and answer are compared after trimming.
 */
export async function evaluateExactMatch(
  model: CausalLM,
  items: readonly ExactMatchItem[],
  opts: { lora?: LoraConfig; adapter?: NamedTensors; maxNewTokens?: number } = {},
): Promise<{ exact_match: number; examples: number; predictions: Array<{ prediction: string; answer: string; correct: boolean }> }> {
  const rt = opts.lora && opts.adapter ? loraRuntime(model, opts.lora, opts.adapter) : undefined;
  const predictions: Array<{ prediction: string; answer: string; correct: boolean }> = [];
  try {
    for (const item of items) {
      const prefix = model.tokenizer.addBosToken ? (model.tokenizer.bosToken ?? '') : '';
      const g = await generate(model, prefix + item.prompt, { maxNewTokens: opts.maxNewTokens ?? 32, temperature: 0, rng: seededRandomBytes('greedy'), lora: rt, stopAt: '\n' });
      const prediction = g.text.split('\n')[0]!.trim();
      predictions.push({ prediction, answer: item.answer, correct: prediction === item.answer.trim() });
    }
  } finally {
    if (rt) disposeLoraRuntime(rt);
  }
  const n = predictions.length;
  return { exact_match: n ? predictions.filter((p) => p.correct).length / n : Number.NaN, examples: n, predictions };
}
