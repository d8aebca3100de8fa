/** Loading a Hugging Face model directory into a CausalLM, and the project's committed base model. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CausalLM } from './causal-lm.js';
import { CheckpointError, readModelConfig, readModelWeights } from './checkpoint.js';
import { loadTokenizer, type TextTokenizer } from './tokenizer.js';

/** Absolute path of the committed base checkpoint `models/fedlora-tiny`. */
export const DEFAULT_BASE_MODEL_DIR: string = fileURLToPath(new URL('../../../models/fedlora-tiny', import.meta.url));

/**
 * Loads config.json, the safetensors weights and tokenizer.json of `dir`. The tokenizer must not
 * emit ids the embedding lacks (its vocabulary may be smaller, as GPT-2's padded tables are).
 */
export async function loadModel(dir: string, opts: { tokenizer?: TextTokenizer } = {}): Promise<CausalLM> {
  const config = await readModelConfig(dir);
  const tokenizer = opts.tokenizer ?? (await loadTokenizer(dir));
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new CheckpointError(
      `${join(dir, 'tokenizer.json')}: tokenizer has ${tokenizer.vocabSize} tokens but config.json field "vocab_size" is ${config.vocabSize} (embedding rows)`,
    );
  }
  const weights = await readModelWeights(dir, config);
  return new CausalLM(config, tokenizer, weights);
}
