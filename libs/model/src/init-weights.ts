/**
 * Fresh weights for training from scratch, following transformers' `_init_weights`: every matrix
 * ~ N(0, 0.02^2), norms at 1 (LayerNorm bias 0), biases 0, and GPT-2's residual projections
 * (`c_proj`) scaled by 1/sqrt(2 * n_layer) (Radford et al. 2019, section 2.3).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import type { ModelConfig } from './config.js';
import { parameterLayout } from './architecture.js';

/** Initial weights in Hugging Face layout; deterministic in `seed` (tfjs' seeded normal sampler). */
export function initWeights(config: ModelConfig, seed: number, std = 0.02): NamedTensors {
  const out: NamedTensors = new Map();
  let k = 0;
  for (const [name, shape] of parameterLayout(config).tensors) {
    let data: Float32Array;
    // Norms start as the identity: weight 1, or 0 for Gemma 2, whose RMSNorm scales by (1 + w).
    if (/(ln_\d|ln_f|layernorm|norm)\.weight$/.test(name)) data = new Float32Array(shape[0]!).fill(config.modelType === 'gemma2' ? 0 : 1);
    else if (name.endsWith('.bias')) data = new Float32Array(shape[0]!);
    else {
      const s = config.modelType === 'gpt2' && name.endsWith('c_proj.weight') ? std / Math.sqrt(2 * config.numLayers) : std;
      const t = tf.randomNormal(shape, 0, s, 'float32', seed * 7919 + k++);
      data = t.dataSync() as Float32Array;
      t.dispose();
    }
    out.set(name, { shape, data });
  }
  return out;
}
