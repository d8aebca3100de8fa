/**
 * Model configuration: the fields of a Hugging Face `config.json` that the GPT-2 and Llama
 * families need, normalised to one camelCase shape. Field names and defaults follow
 * transformers' `GPT2Config` and `LlamaConfig`.
 */

/** Architectures this engine implements. */
export type ModelType = 'gpt2' | 'llama';

/** The normalised configuration of a decoder-only causal LM. */
export interface ModelConfig {
  modelType: ModelType;
  vocabSize: number;
  /** Context length (GPT-2 `n_positions`, Llama `max_position_embeddings`). */
  maxPositions: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** Grouped-query attention: key/value heads (equals numHeads for GPT-2). */
  numKvHeads: number;
  headDim: number;
  /** MLP inner width (GPT-2 `n_inner`, default 4 * hidden; Llama `intermediate_size`). */
  intermediateSize: number;
  /** LayerNorm / RMSNorm epsilon. */
  normEps: number;
  /** Rotary base (Llama only). */
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Llama q/k/v (and o) biases, as in Qwen2 (`attention_bias`). */
  attentionBias: boolean;
  bosTokenId?: number;
  eosTokenId?: number;
  /** The raw config.json, preserved so that saving writes back every field. */
  raw: Record<string, unknown>;
}

/** Families Llama's code path covers (same tensor names and math). */
const LLAMA_LIKE = new Set(['llama', 'mistral', 'qwen2', 'smollm', 'smollm3']);

/** Parses a config.json object; `file` names the source in error messages. */
export function parseModelConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const type = raw.model_type;
  if (typeof type !== 'string') throw new TypeError(`${file}: field "model_type" must be a string, received ${JSON.stringify(type)}`);
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new RangeError(`${file}: field "${key}" must be a positive integer, received ${JSON.stringify(raw[key])}`);
    }
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`${file}: field "${key}" must be a positive number, received ${JSON.stringify(raw[key])}`);
    return v;
  };
  const optId = (key: string): number | undefined => (typeof raw[key] === 'number' ? (raw[key] as number) : undefined);
  if (type === 'gpt2') {
    const hidden = int('n_embd');
    const heads = int('n_head');
    if (hidden % heads !== 0) throw new RangeError(`${file}: "n_embd" (${hidden}) must be divisible by "n_head" (${heads})`);
    const act = raw.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
      throw new RangeError(`${file}: field "activation_function" must be "gelu_new", received ${JSON.stringify(act)}`);
    }
    return {
      modelType: 'gpt2',
      vocabSize: int('vocab_size'),
      maxPositions: int('n_positions'),
      hiddenSize: hidden,
      numLayers: int('n_layer'),
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      intermediateSize: raw.n_inner == null ? 4 * hidden : int('n_inner'),
      normEps: num('layer_norm_epsilon', 1e-5),
      ropeTheta: 0,
      tieWordEmbeddings: raw.tie_word_embeddings !== false,
      attentionBias: true,
      bosTokenId: optId('bos_token_id'),
      eosTokenId: optId('eos_token_id'),
      raw,
    };
  }
  if (LLAMA_LIKE.has(type)) {
    const hidden = int('hidden_size');
    const heads = int('num_attention_heads');
    const kv = int('num_key_value_heads', heads);
    if (heads % kv !== 0) throw new RangeError(`${file}: "num_attention_heads" (${heads}) must be a multiple of "num_key_value_heads" (${kv})`);
    const act = raw.hidden_act ?? 'silu';
    if (act !== 'silu') throw new RangeError(`${file}: field "hidden_act" must be "silu", received ${JSON.stringify(act)}`);
    if (raw.rope_scaling != null) throw new RangeError(`${file}: field "rope_scaling" is not supported, received ${JSON.stringify(raw.rope_scaling)}`);
    return {
      modelType: 'llama',
      vocabSize: int('vocab_size'),
      maxPositions: int('max_position_embeddings', 2048),
      hiddenSize: hidden,
      numLayers: int('num_hidden_layers'),
      numHeads: heads,
      numKvHeads: kv,
      headDim: raw.head_dim == null ? hidden / heads : int('head_dim'),
      intermediateSize: int('intermediate_size'),
      normEps: num('rms_norm_eps', 1e-6),
      ropeTheta: num('rope_theta', 10000),
      tieWordEmbeddings: raw.tie_word_embeddings === true,
      attentionBias: raw.attention_bias === true || type === 'qwen2',
      bosTokenId: optId('bos_token_id'),
      eosTokenId: optId('eos_token_id'),
      raw,
    };
  }
  throw new RangeError(`${file}: unsupported "model_type" ${JSON.stringify(type)}, expected one of gpt2, ${[...LLAMA_LIKE].join(', ')}`);
}
