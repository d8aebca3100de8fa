/**
 * Autoregressive sampling: temperature (Ackley et al. 1985) and top-k (Fan et al. 2018). Each
 * step recomputes the window (no KV cache: the models here are small and the window short).
 * Randomness is a parameter.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RandomBytes } from '@fedlora/tensor';
import { uniform01 } from '@fedlora/tensor';
import type { CausalLM, LoraRuntime } from './causal-lm.js';

/** Options of `generate`. */
export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 means greedy. */
  temperature?: number;
  topK?: number;
  rng: RandomBytes;
  lora?: LoraRuntime;
  /** Stop at the end-of-text token (default true). */
  stopAtEos?: boolean;
  /** Stop once the generated text contains this string (e.g. "\n" for short answers). */
  stopAt?: string;
}

/** Continues `prompt`; returns the new token ids and their text. */
export async function generate(model: CausalLM, prompt: string, opts: GenerateOptions): Promise<{ ids: number[]; text: string }> {
  const temperature = opts.temperature ?? 1;
  if (!(temperature >= 0)) throw new RangeError(`temperature must be >= 0, received ${temperature}`);
  const ids = model.tokenizer.encode(prompt);
  if (ids.length === 0 && model.tokenizer.eosTokenId !== undefined) ids.push(model.tokenizer.eosTokenId);
  const start = ids.length;
  const ctx = model.config.maxPositions;
  for (let i = 0; i < opts.maxNewTokens; i++) {
    const window = ids.slice(-ctx);
    const input = tf.tensor2d(window, [1, window.length], 'int32');
    const lastLogits = tf.tidy(() => {
      const logits = model.forward(input, opts.lora ? { lora: opts.lora } : {});
      return tf.slice(logits, [window.length - 1, 0], [1, -1]);
    });
    const z = (await lastLogits.data()) as Float32Array;
    tf.dispose([input, lastLogits]);
    const next = sample(z.subarray(0, model.tokenizer.vocabSize), temperature, opts.topK, opts.rng);
    if ((opts.stopAtEos ?? true) && next === model.tokenizer.eosTokenId) break;
    ids.push(next);
    if (opts.stopAt !== undefined && model.tokenizer.decode(ids.slice(start)).includes(opts.stopAt)) break;
  }
  const out = ids.slice(start);
  return { ids: out, text: model.tokenizer.decode(out) };
}

/** Draws one index from softmax(z / temperature) restricted to the top k; greedy at temperature 0. */
export function sample(z: Float32Array, temperature: number, topK: number | undefined, rng: RandomBytes): number {
  let order = Array.from(z.keys()).sort((a, b) => z[b]! - z[a]!);
  if (temperature === 0) return order[0]!;
  if (topK !== undefined && topK > 0) order = order.slice(0, topK);
  const max = z[order[0]!]!;
  const w = order.map((i) => Math.exp((z[i]! - max) / temperature));
  const total = w.reduce((a, b) => a + b, 0);
  let u = uniform01(rng) * total;
  for (let j = 0; j < order.length; j++) {
    u -= w[j]!;
    if (u <= 0) return order[j]!;
  }
  return order[order.length - 1]!;
}
