/**
 * `fedlora model eval`: completion-only loss of instruction data, multiple choice by
 * log-likelihood (acc, acc_norm) and exact match of short greedy answers (libs/train
 * eval-harness.ts), on a model directory with an optional PEFT adapter.
 */
import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { CliError } from '../output.js';

/** What `fedlora model eval` computes. */
export type EvalTask = 'loss' | 'mcq' | 'exact-match';

/** Options of `runModelEval`. */
export interface ModelEvalOptions {
  data: string;
  task: EvalTask;
  /** prompt-completion | messages | alpaca | auto (from the first record's fields). Task `loss` only. */
  format: string;
  batchSize: number;
  maxNewTokens: number;
}

/** The instruction format a record's fields suggest. */
export function detectFormat(r: Record<string, unknown>): 'prompt-completion' | 'messages' | 'alpaca' {
  if ('messages' in r) return 'messages';
  if ('instruction' in r) return 'alpaca';
  if ('prompt' in r && 'completion' in r) return 'prompt-completion';
  throw new CliError(`cannot tell the data format from the fields ${JSON.stringify(Object.keys(r))}: pass --format prompt-completion|messages|alpaca`, 2);
}

/** Runs one evaluation; returns the JSON document to print. */
export async function runModelEval(model: CausalLM, lora: { config: LoraConfig; adapter: NamedTensors } | undefined, o: ModelEvalOptions): Promise<Record<string, unknown>> {
  const t = await import('@fedlora/train');
  const records = await t.readJsonl(o.data).catch((e: NodeJS.ErrnoException) => {
    throw new CliError(e.code === 'ENOENT' ? `${o.data}: missing file` : e.message);
  });
  if (records.length === 0) throw new CliError(`${o.data}: no records (expected one JSON object per line)`);
  const adapt = lora ? { lora: lora.config, adapter: lora.adapter } : {};
  const where = (i: number): string => `${o.data}: record ${i + 1}`;
  try {
    if (o.task === 'mcq') {
      const r = await t.evaluateMcq(model, records.map((x, i) => t.parseMcqItem(x, where(i))), { ...adapt, batchSize: o.batchSize });
      return { task: 'mcq', acc: r.acc, acc_norm: r.acc_norm, examples: r.examples, skipped: r.skipped, predictions: r.predictions };
    }
    if (o.task === 'exact-match') {
      const r = await t.evaluateExactMatch(model, records.map((x, i) => t.parseExactMatchItem(x, where(i))), { ...adapt, maxNewTokens: o.maxNewTokens });
      return { task: 'exact-match', exact_match: r.exact_match, examples: r.examples, predictions: r.predictions };
    }
    if (o.task !== 'loss') throw new CliError(`--task must be loss, mcq or exact-match, received "${String(o.task)}"`, 2);
    const format = o.format === 'auto' ? detectFormat(records[0]!) : o.format;
    if (!t.isInstructFormat(format)) throw new CliError(`--format must be auto, ${t.INSTRUCT_FORMATS.join(', ')}, received "${format}"`, 2);
    const examples = records.map((x, i) => t.instructSegments(model.tokenizer, x, format, where(i)));
    const seqs = t.maskedSequences(model.tokenizer, examples, model.config.maxPositions + 1);
    if (seqs.sequences.length === 0) throw new CliError(`${o.data}: every example was skipped (${seqs.skipped}): no completion fits the model's context of ${model.config.maxPositions} tokens`);
    const r = await t.completionLoss(model, seqs.sequences, { ...adapt, batchSize: o.batchSize });
    return { task: 'loss', format, loss: r.loss, tokens: r.tokens, examples: r.examples, truncated: seqs.truncated, skipped: seqs.skipped };
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) throw new CliError(err.message);
    throw err;
  }
}
