/**
 * config.json of the RoPE decoder families, keys and defaults as transformers'
 * `LlamaConfig` (also SmolLM2, TinyLlama: model_type llama), `MistralConfig`, `Qwen2Config`,
 * `Gemma2Config` and `Phi3Config` define them. Options this engine does not implement are
 * refused with the key and the value.
 */
import { fieldReader, type ModelConfig, type ModelType } from './config.js';
import { parseRopeScaling } from './rope.js';

/** model_type values handled here, and the code path each takes. */
const FAMILIES: Record<string, ModelType> = { llama: 'llama', mistral: 'llama', qwen2: 'llama', gemma2: 'gemma2', phi3: 'phi3' };

/** The decoder model_type values this engine loads. */
export const DECODER_TYPES: ReadonlySet<string> = new Set(Object.keys(FAMILIES));

/** Parses the config of a RoPE decoder (`type` is one of DECODER_TYPES). */
export function parseDecoderConfig(raw: Record<string, unknown>, type: string, file: string): ModelConfig {
  const f = fieldReader(raw, file);
  const refuse = (key: string, why: string): never => {
    throw new RangeError(`${file}: field "${key}" ${why}, received ${JSON.stringify(raw[key])}`);
  };
  const hidden = f.int('hidden_size');
  const heads = f.int('num_attention_heads');
  const kv = f.int('num_key_value_heads', heads);
  if (heads % kv !== 0) throw new RangeError(`${file}: "num_attention_heads" (${heads}) must be a multiple of "num_key_value_heads" (${kv})`);
  const layers = f.int('num_hidden_layers');
  const family = FAMILIES[type]!;
  const headDim = raw.head_dim == null ? (family === 'gemma2' ? 256 : hidden / heads) : f.int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) refuse('head_dim', `must be an even integer (hidden_size / num_attention_heads = ${hidden / heads})`);

  // Activation: Gemma 2 reads hidden_activation; the others hidden_act.
  const actKey = family === 'gemma2' ? 'hidden_activation' : 'hidden_act';
  const act = raw[actKey] ?? (family === 'gemma2' ? 'gelu_pytorch_tanh' : 'silu');
  const hiddenAct = act === 'silu' ? 'silu' : act === 'gelu_pytorch_tanh' ? 'gelu_tanh' : refuse(actKey, 'must be "silu" or "gelu_pytorch_tanh"');

  if (raw.partial_rotary_factor != null && raw.partial_rotary_factor !== 1) refuse('partial_rotary_factor', 'other than 1 is not supported');
  if (raw.use_sliding_window === true && type === 'qwen2') refuse('use_sliding_window', 'true is not supported for qwen2');
  if (raw.use_mrope === true) refuse('use_mrope', 'true (multimodal RoPE) is not supported');
  if (raw.rope_interleaved === true) refuse('rope_interleaved', 'true is not supported (RoPE rotates halves, as transformers does)');
  const ropeScaling = parseRopeScaling(raw.rope_scaling, file);
  const maxPositions = f.int('max_position_embeddings', family === 'gemma2' ? 8192 : 2048);

  // Sliding windows: Mistral and Phi-3 on every layer when sliding_window is set, Gemma 2 on even
  // layers; a `layer_types` list (newer transformers) overrides the default pattern.
  // An absent key takes the config class default (Mistral and Gemma 2: 4096), null means none.
  let window = 0;
  if (type === 'mistral' || family === 'phi3' || family === 'gemma2') {
    if (!('sliding_window' in raw)) window = family === 'phi3' ? 0 : 4096;
    else if (raw.sliding_window !== null) window = f.int('sliding_window');
  }
  let layerWindows = Array.from({ length: layers }, (_, i) => (family === 'gemma2' && i % 2 === 1 ? 0 : window));
  if (raw.layer_types != null) {
    const lt = raw.layer_types;
    if (!Array.isArray(lt) || lt.length !== layers || lt.some((x) => x !== 'full_attention' && x !== 'sliding_attention')) {
      refuse('layer_types', `must list "full_attention" or "sliding_attention" for each of the ${layers} layers`);
    }
    if ((lt as string[]).includes('sliding_attention') && window === 0) refuse('layer_types', 'has sliding_attention layers but no "sliding_window"');
    layerWindows = (lt as string[]).map((x) => (x === 'sliding_attention' ? window : 0));
  }

  const bias = raw.attention_bias === true;
  // Gemma2Config defaults: attention 50, final 30 when the key is absent; null disables.
  const softcap = (key: string, fallback: number): number | undefined => (!(key in raw) ? fallback : raw[key] === null ? undefined : f.num(key, 0));
  const gemma = family === 'gemma2';
  return {
    modelType: family,
    vocabSize: f.int('vocab_size'),
    maxPositions,
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: heads,
    numKvHeads: kv,
    headDim,
    intermediateSize: f.int('intermediate_size'),
    normEps: f.num('rms_norm_eps', family === 'phi3' ? 1e-5 : 1e-6),
    ropeTheta: f.num('rope_theta', 10000),
    ropeScaling,
    hiddenAct,
    tieWordEmbeddings: raw.tie_word_embeddings == null ? gemma : raw.tie_word_embeddings === true,
    attentionBias: bias || type === 'qwen2',
    outputBias: bias && type !== 'qwen2',
    mlpBias: raw.mlp_bias === true,
    attentionScale: gemma ? f.num('query_pre_attn_scalar', 256) ** -0.5 : 1 / Math.sqrt(headDim),
    layerWindows,
    attnLogitSoftcap: gemma ? softcap('attn_logit_softcapping', 50) : undefined,
    finalLogitSoftcap: gemma ? softcap('final_logit_softcapping', 30) : undefined,
    embeddingScale: gemma ? Math.fround(Math.sqrt(hidden)) : undefined,
    bosTokenId: f.optId('bos_token_id'),
    eosTokenId: f.optId('eos_token_id'),
    raw,
  };
}
