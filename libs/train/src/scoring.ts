/**
 * Scoring sequences with loss masks: per-example sums of log-probabilities of the trained
 * (completion) tokens, the building block of completion-only eval loss and of multiple-choice
 * scoring by log-likelihood (eval-harness.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { crossEntropyPerToken, disposeLoraRuntime, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import { padMasked } from './instruct-data.js';
import { tokenIdOf, trainedTargets } from './loss-mask.js';
import { toTensors } from './trainer.js';

/** Per-sequence log-likelihoods of the trained targets. */
export interface SequenceScores {
  /** sum over trained targets of log p(target | preceding tokens), natural log. */
  logProb: Float64Array;
  /** Number of trained targets per sequence. */
  tokens: Int32Array;
  /** Whether every trained target is the model's argmax (lm-eval's `is_greedy`). */
  greedy: boolean[];
}

/** Options of `scoreSequences`. */
export interface ScoreOptions {
  lora?: LoraConfig;
  adapter?: NamedTensors;
  batchSize?: number;
}

/**
 * Scores masked sequences (loss-mask.ts; lengths may differ, each at most the context + 1): each
 * batch is right-padded with masked tokens, so padding changes nothing (causal attention).
 */
export async function scoreSequences(model: CausalLM, sequences: readonly Int32Array[], opts: ScoreOptions = {}): Promise<SequenceScores> {
  const n = sequences.length;
  const logProb = new Float64Array(n);
  const tokens = new Int32Array(n);
  const greedy: boolean[] = new Array<boolean>(n).fill(true);
  const bs = opts.batchSize ?? 8;
  const rt = opts.lora && opts.adapter ? loraRuntime(model, opts.lora, opts.adapter) : undefined;
  try {
    for (let i = 0; i < n; i += bs) {
      const batch = sequences.slice(i, i + bs);
      batch.forEach((s, k) => {
        if (s.length < 2 || s.length > model.config.maxPositions + 1) {
          throw new RangeError(`sequence ${i + k} holds ${s.length} tokens; expected 2 to ${model.config.maxPositions + 1} (the context + 1)`);
        }
      });
      const padded = padMasked(batch, 0);
      const T = padded[0]!.length - 1;
      const { inputs, targets, weights } = toTensors(padded, T);
      const [lossT, argT] = tf.tidy(() => {
        const logits = model.forward(inputs, rt ? { lora: rt } : {});
        return [crossEntropyPerToken(logits, targets, weights), tf.argMax(logits, 1)];
      });
      const loss = (await lossT!.data()) as Float32Array;
      const arg = (await argT!.data()) as Int32Array;
      tf.dispose([lossT!, argT!, inputs, targets, ...(weights ? [weights] : [])]);
      padded.forEach((s, k) => {
        let sum = 0;
        for (let j = 0; j < T; j++) {
          const v = s[j + 1]!;
          if (v < 0) continue;
          sum += loss[k * T + j]!;
          if (arg[k * T + j] !== tokenIdOf(v)) greedy[i + k] = false;
        }
        logProb[i + k] = -sum;
        tokens[i + k] = trainedTargets(s);
      });
    }
  } finally {
    if (rt) disposeLoraRuntime(rt);
  }
  return { logProb, tokens, greedy };
}

/** Mean loss per trained token (nats) over masked sequences, as `fedlora model eval` reports it. */
export async function completionLoss(model: CausalLM, sequences: readonly Int32Array[], opts: ScoreOptions = {}): Promise<{ loss: number; tokens: number; examples: number }> {
  if (sequences.length === 0) throw new RangeError('completionLoss: no examples to evaluate (all skipped, or the file is empty)');
  const s = await scoreSequences(model, sequences, opts);
  const tokens = s.tokens.reduce((a, b) => a + b, 0);
  const sum = s.logProb.reduce((a, b) => a + b, 0);
  return { loss: -sum / tokens, tokens, examples: sequences.length };
}
