/**
 * The parameter layout of each family: which tensors a checkpoint must hold, with which shapes,
 * and which of them are linear layers (the places LoRA can attach). Names are the Hugging Face
 * `state_dict` names of `GPT2LMHeadModel`, `LlamaForCausalLM` (and Mistral, Qwen2), `Gemma2ForCausalLM`
 * and `Phi3ForCausalLM`.
 *
 * Internally every linear weight is kept as a kernel of shape [in, out] so the forward pass is a
 * plain `x @ W` (the wasm backend is slow on transposed matmuls, ARCHITECTURE.md). GPT-2's `Conv1D`
 * stores exactly that; Llama's `nn.Linear` stores [out, in] and is transposed once at load time.
 */
import type { ModelConfig } from './config.js';

/** A linear layer LoRA can adapt. */
export interface LinearModule {
  /** Module path, e.g. `transformer.h.0.attn.c_attn` or `model.layers.0.self_attn.q_proj`. */
  path: string;
  inFeatures: number;
  outFeatures: number;
  /** True for GPT-2 Conv1D (stored [in, out]); PEFT's `fan_in_fan_out`. */
  fanInFanOut: boolean;
  hasBias: boolean;
}

/** Expected checkpoint tensors (HF names and shapes as stored on disk) and the linear modules. */
export interface ParameterLayout {
  tensors: Map<string, number[]>;
  linears: LinearModule[];
}

/** The parameter layout of a configuration. */
export function parameterLayout(c: ModelConfig): ParameterLayout {
  const tensors = new Map<string, number[]>();
  const linears: LinearModule[] = [];
  const d = c.hiddenSize;
  const linear = (path: string, inF: number, outF: number, bias: boolean, fanInFanOut: boolean): void => {
    tensors.set(`${path}.weight`, fanInFanOut ? [inF, outF] : [outF, inF]);
    if (bias) tensors.set(`${path}.bias`, [outF]);
    linears.push({ path, inFeatures: inF, outFeatures: outF, fanInFanOut, hasBias: bias });
  };
  if (c.modelType === 'gpt2') {
    tensors.set('transformer.wte.weight', [c.vocabSize, d]);
    tensors.set('transformer.wpe.weight', [c.maxPositions, d]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      tensors.set(`${p}.ln_1.weight`, [d]);
      tensors.set(`${p}.ln_1.bias`, [d]);
      linear(`${p}.attn.c_attn`, d, 3 * d, true, true);
      linear(`${p}.attn.c_proj`, d, d, true, true);
      tensors.set(`${p}.ln_2.weight`, [d]);
      tensors.set(`${p}.ln_2.bias`, [d]);
      linear(`${p}.mlp.c_fc`, d, c.intermediateSize, true, true);
      linear(`${p}.mlp.c_proj`, c.intermediateSize, d, true, true);
    }
    tensors.set('transformer.ln_f.weight', [d]);
    tensors.set('transformer.ln_f.bias', [d]);
    if (!c.tieWordEmbeddings) tensors.set('lm_head.weight', [c.vocabSize, d]);
  } else {
    const q = c.numHeads * c.headDim;
    const kv = c.numKvHeads * c.headDim;
    const I = c.intermediateSize;
    tensors.set('model.embed_tokens.weight', [c.vocabSize, d]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      tensors.set(`${p}.input_layernorm.weight`, [d]);
      if (c.modelType === 'phi3') {
        // Phi-3 fuses q/k/v (rows q, then k, then v) and gate/up (rows gate, then up).
        linear(`${p}.self_attn.qkv_proj`, d, q + 2 * kv, false, false);
      } else {
        linear(`${p}.self_attn.q_proj`, d, q, c.attentionBias, false);
        linear(`${p}.self_attn.k_proj`, d, kv, c.attentionBias, false);
        linear(`${p}.self_attn.v_proj`, d, kv, c.attentionBias, false);
      }
      linear(`${p}.self_attn.o_proj`, q, d, c.outputBias, false);
      tensors.set(`${p}.post_attention_layernorm.weight`, [d]);
      if (c.modelType === 'gemma2') {
        tensors.set(`${p}.pre_feedforward_layernorm.weight`, [d]);
        tensors.set(`${p}.post_feedforward_layernorm.weight`, [d]);
      }
      if (c.modelType === 'phi3') {
        linear(`${p}.mlp.gate_up_proj`, d, 2 * I, false, false);
      } else {
        linear(`${p}.mlp.gate_proj`, d, I, c.mlpBias, false);
        linear(`${p}.mlp.up_proj`, d, I, c.mlpBias, false);
      }
      linear(`${p}.mlp.down_proj`, I, d, c.mlpBias, false);
    }
    tensors.set('model.norm.weight', [d]);
    if (!c.tieWordEmbeddings) tensors.set('lm_head.weight', [c.vocabSize, d]);
  }
  return { tensors, linears };
}

/** Buffers some checkpoints carry that are not parameters (GPT-2's causal masks, Llama's inv_freq). */
export function isIgnoredBuffer(name: string): boolean {
  return /\.attn\.(bias|masked_bias)$/.test(name) || name.endsWith('rotary_emb.inv_freq');
}

/**
 * Maps a checkpoint tensor name to the canonical HF name. Original GPT-2 checkpoints on the Hub
 * (`gpt2`, `distilgpt2`) store `h.0.attn...`, `wte.weight`, `ln_f.weight` without `transformer.`.
 */
export function canonicalName(c: ModelConfig, name: string): string {
  if (c.modelType === 'gpt2' && /^(wte|wpe|h\.\d+|ln_f)\./.test(name)) return `transformer.${name}`;
  return name;
}
