/**
 * Model configuration: the fields of a Hugging Face `config.json` that the supported families
 * need, normalised to one camelCase shape. Field names and defaults follow transformers'
 * `GPT2Config` here and the decoder configs in config-decoder.ts. A key this engine would have
 * to ignore to run the model (an unknown activation, a RoPE scaling it does not implement,
 * quantized weights) is refused with the key and the value, never approximated.
 */
import { parseDecoderConfig, DECODER_TYPES } from './config-decoder.js';
import type { RopeScaling } from './rope.js';

/** Code paths this engine implements (GPT-2; Llama and its config variants; Gemma 2; Phi-3). */
export type ModelType = 'gpt2' | 'llama' | 'gemma2' | 'phi3';

/** The normalised configuration of a decoder-only causal LM. */
export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  /** Context length (GPT-2 `n_positions`, others `max_position_embeddings`). */
  maxPositions: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Grouped-query attention: key/value heads (equals numHeads for GPT-2). */
  numKvHeads: number;
  headDim: number;
  /** MLP inner width (GPT-2 `n_inner`, default 4 * hidden; others `intermediate_size`). */
  intermediateSize: number;
  /** LayerNorm / RMSNorm epsilon. */
  normEps: number;
  /** Rotary base (0 for GPT-2). */
  ropeTheta: number;
  /** Rotary frequency scaling (`rope_scaling`). */
  ropeScaling: RopeScaling;
  /** MLP activation: tanh GELU (`gelu_new`, `gelu_pytorch_tanh`: the same formula) or SiLU (gated). */
  hiddenAct: 'gelu_tanh' | 'silu';
  tieWordEmbeddings: boolean;
  /** q/k/v biases (Qwen2 always; Llama/Gemma 2 `attention_bias`). */
  attentionBias: boolean;
  /** o_proj bias (Llama/Gemma 2 `attention_bias`; never Qwen2). */
  outputBias: boolean;
  /** gate/up/down biases (Llama `mlp_bias`). */
  mlpBias: boolean;
  /** Multiplier of Q K^T: 1/sqrt(head_dim), or Gemma 2's query_pre_attn_scalar^-0.5. */
  attentionScale: number;
  /**
   * Per layer, the attention window W (query i sees keys j with i - W < j <= i, transformers'
   * sliding-window mask), or 0 for full causal attention.
   */
  layerWindows: number[];
  /** Gemma 2: scores <- c tanh(scores / c) before the mask. */
  attnLogitSoftcap?: number;
  /** Gemma 2: logits <- c tanh(logits / c). */
  finalLogitSoftcap?: number;
  /** Gemma 2: embeddings multiplied by sqrt(hidden_size) (rounded to float32 as torch does). */
  embeddingScale?: number;
  bosTokenId?: number;
  eosTokenId?: number;
  /** The raw config.json, preserved so that saving writes back every field. */
  raw: Record<string, unknown>;
}

/** Reads typed fields of a raw config, with errors that name the file, the key and the value. */
export function fieldReader(raw: Record<string, unknown>, file: string) {
  return {
    int(key: string, fallback?: number): number {
      const v = raw[key] ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
        throw new RangeError(`${file}: field "${key}" must be a positive integer, received ${JSON.stringify(raw[key])}`);
      }
      return v;
    },
    num(key: string, fallback: number): number {
      const v = raw[key] ?? fallback;
      if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`${file}: field "${key}" must be a positive number, received ${JSON.stringify(raw[key])}`);
      return v;
    },
    optId(key: string): number | undefined {
      const v = raw[key];
      if (Array.isArray(v)) return typeof v[0] === 'number' ? v[0] : undefined; // Llama 3 lists several EOS ids
      return typeof v === 'number' ? v : undefined;
    },
  };
}

/** Parses a config.json object; `file` names the source in error messages. */
export function parseModelConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const type = raw.model_type;
  if (typeof type !== 'string') throw new TypeError(`${file}: field "model_type" must be a string, received ${JSON.stringify(type)}`);
  if (raw.quantization_config != null) {
    throw new RangeError(`${file}: field "quantization_config" is not supported (quantized weights), received ${JSON.stringify(raw.quantization_config)}`);
  }
  if (type === 'gpt2') return parseGpt2(raw, file);
  if (DECODER_TYPES.has(type)) return parseDecoderConfig(raw, type, file);
  throw new RangeError(`${file}: unsupported "model_type" ${JSON.stringify(type)}, expected one of gpt2, ${[...DECODER_TYPES].join(', ')}`);
}

function parseGpt2(raw: Record<string, unknown>, file: string): ModelConfig {
  const f = fieldReader(raw, file);
  const hidden = f.int('n_embd');
  const heads = f.int('n_head');
  if (hidden % heads !== 0) throw new RangeError(`${file}: "n_embd" (${hidden}) must be divisible by "n_head" (${heads})`);
  const act = raw.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw new RangeError(`${file}: field "activation_function" must be "gelu_new", received ${JSON.stringify(act)}`);
  }
  const layers = f.int('n_layer');
  return {
    modelType: 'gpt2',
    vocabSize: f.int('vocab_size'),
    maxPositions: f.int('n_positions'),
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: heads,
    headDim: hidden / heads,
    intermediateSize: raw.n_inner == null ? 4 * hidden : f.int('n_inner'),
    normEps: f.num('layer_norm_epsilon', 1e-5),
    ropeTheta: 0,
    ropeScaling: { type: 'default' },
    hiddenAct: 'gelu_tanh',
    tieWordEmbeddings: raw.tie_word_embeddings !== false,
    attentionBias: true,
    outputBias: true,
    mlpBias: true,
    attentionScale: 1 / Math.sqrt(hidden / heads),
    layerWindows: new Array<number>(layers).fill(0),
    bosTokenId: f.optId('bos_token_id'),
    eosTokenId: f.optId('eos_token_id'),
    raw,
  };
}
