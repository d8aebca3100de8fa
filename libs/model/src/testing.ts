/** Helpers for this package's tests: a tiny random model written in the Hugging Face layout. */
import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainByteLevelBpe } from './bpe-trainer.js';
import { writeModelDir } from './checkpoint.js';
import { parseModelConfig } from './config.js';
import { initWeights } from './init-weights.js';

/** A fresh temporary directory. */
export function tempDir(prefix = 'fedlora-model-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Raw config.json objects of two tiny models. */
export const TINY_CONFIGS: Record<'gpt2' | 'llama', Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', vocab_size: 300, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 },
  llama: {
    model_type: 'llama',
    vocab_size: 300,
    max_position_embeddings: 32,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    hidden_act: 'silu',
  },
};

/** Writes a tiny random model (config, safetensors, tokenizer) to a new directory and returns it. */
export async function writeTinyModel(kind: 'gpt2' | 'llama', seed = 1, dir = tempDir()): Promise<string> {
  const config = parseModelConfig(TINY_CONFIGS[kind]);
  await writeModelDir(dir, config, initWeights(config, seed, 0.2));
  const text = 'It was the best of times, it was the worst of times, it was the age of wisdom. '.repeat(10);
  const { tokenizer, config: tokConfig } = trainByteLevelBpe(text, { vocabSize: 300 });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokConfig));
  return dir;
}
