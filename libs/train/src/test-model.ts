/** A tiny random GPT-2 with a BPE tokenizer trained on the fly, for this package's tests. */
import { CausalLM, initWeights, parseModelConfig, tokenizerFromJson, trainByteLevelBpe } from '@fedlora/model';

/** Public-domain text to train and evaluate on in tests. */
export const SAMPLE_TEXT =
  'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world. ';

/** Builds a 2-layer GPT-2 (d 32, vocab 300, context 32). */
export function tinyGpt2(seed = 1): CausalLM {
  const { tokenizer, config } = trainByteLevelBpe(SAMPLE_TEXT.repeat(5), { vocabSize: 300 });
  const cfg = parseModelConfig({ model_type: 'gpt2', vocab_size: 300, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
  return new CausalLM(cfg, tokenizerFromJson(tokenizer, config), initWeights(cfg, seed, 0.1));
}
