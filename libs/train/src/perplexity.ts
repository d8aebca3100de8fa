/**
 * Perplexity of a text: the mean next-token cross-entropy over the whole text, exp'd.
 *
 * Windowing: the text is tokenized without special tokens into ids t_0..t_{n-1}; windows of up to
 * C + 1 tokens (C = context length) start every C tokens, so each token t_1..t_{n-1} is predicted
 * exactly once, from at most C previous tokens of its own window (no overlap, no sliding stride).
 * The last window may be shorter. tokens = n - 1.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { crossEntropySum, disposeLoraRuntime, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import { toTensors } from './trainer.js';

/** Mean loss (nats/token) and perplexity of `text` under the (optionally adapted) model. */
export async function textPerplexity(
  model: CausalLM,
  text: string,
  opts: { lora?: LoraConfig; adapter?: NamedTensors; batchSize?: number; context?: number } = {},
): Promise<{ tokens: number; loss: number; perplexity: number }> {
  const ids = model.tokenizer.encode(text);
  if (ids.length < 2) throw new RangeError(`text must hold at least 2 tokens, received ${ids.length}`);
  const c = opts.context ?? model.config.maxPositions;
  const full: Int32Array[] = [];
  let tail: Int32Array | undefined;
  for (let s = 0; s + 1 < ids.length; s += c) {
    const w = Int32Array.from(ids.slice(s, s + c + 1));
    if (w.length === c + 1) full.push(w);
    else tail = w;
  }
  const rt = opts.lora && opts.adapter ? loraRuntime(model, opts.lora, opts.adapter) : undefined;
  let sum = 0;
  let tokens = 0;
  const bs = opts.batchSize ?? 8;
  try {
    const groups: Int32Array[][] = [];
    for (let i = 0; i < full.length; i += bs) groups.push(full.slice(i, i + bs));
    if (tail) groups.push([tail]);
    for (const g of groups) {
      const t = g[0]!.length - 1;
      const { inputs, targets } = toTensors(g, t);
      const loss = tf.tidy(() => crossEntropySum(model.forward(inputs, rt ? { lora: rt } : {}), targets));
      sum += (await loss.data())[0]!;
      tokens += g.length * t;
      tf.dispose([loss, inputs, targets]);
    }
  } finally {
    if (rt) disposeLoraRuntime(rt);
  }
  const loss = sum / tokens;
  return { tokens, loss, perplexity: Math.exp(loss) };
}
