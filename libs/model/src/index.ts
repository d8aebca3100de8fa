// Backend selection (the ladder of ARCHITECTURE.md: Decisions, Tensors).
export { initBackend, currentBackend, BACKEND_NAMES } from './backend.js';
export type { BackendName } from './backend.js';
// Configuration of the supported families (GPT-2; Llama, Mistral, Qwen2, Gemma 2, Phi-3).
export type { ModelConfig, ModelType } from './config.js';
export { parseModelConfig } from './config.js';
/** RoPE frequency scaling (rope_scaling: default, linear, dynamic, llama3). */
export type { RopeScaling } from './rope.js';
/** The ops of a model configuration that the native kernels do not cover (for the backend report). */
export { nativeFallbacks } from './decoder-blocks.js';
// Parameter layout: expected tensors and the linear modules LoRA can adapt.
export type { LinearModule, ParameterLayout } from './architecture.js';
export { parameterLayout } from './architecture.js';
// Tokenizers through @huggingface/tokenizers.
export type { TextTokenizer } from './tokenizer.js';
export { loadTokenizer, fromJson as tokenizerFromJson } from './tokenizer.js';
// Chat templates (tokenizer_config.json `chat_template`, Jinja) and their assistant spans.
export type { ChatMessage, TextSegment } from './chat-template.js';
export { SIMPLE_CHAT_TEMPLATE, assertChatMessages, chatSegments, renderChat } from './chat-template.js';
// Hugging Face model directories: read and write.
export { CheckpointError, readModelConfig, readModelWeights, writeModelDir } from './checkpoint.js';
// The causal LM on tfjs and its loss.
export type { ForwardOptions, LoraRuntime } from './causal-lm.js';
export { CausalLM } from './causal-lm.js';
/** One batched pass exposing each LoRA layer's input and output gradient (per-example clipping). */
export type { LoraTap } from './causal-lm.js';
export type { LoraLayerTrace, LoraTraces } from './lora-tap.js';
export { loraLayerTraces, disposeLoraTraces } from './lora-tap.js';
export { crossEntropy, crossEntropySum, crossEntropyPerToken } from './loss.js';
/** tf.valueAndGrads that frees saved activations and gradients node by node during the backward pass. */
export { valueAndGradsFrugal } from './backprop.js';
// Loading a model directory; the committed base model.
export { loadModel, DEFAULT_BASE_MODEL_DIR } from './load-model.js';
// LoRA: config, PEFT names, initialisation, merge.
export type { LoraConfig, LoraVariant } from './lora.js';
export {
  LORA_VARIANTS,
  defaultLoraConfig,
  validateLoraConfig,
  isTrainableLoraTensor,
  loraTrainableDimension,
  loraTargets,
  peftName,
  initLoraAdapter,
  assertAdapterLayout,
  loraRuntime,
  disposeLoraRuntime,
  mergeLoraAdapter,
} from './lora.js';
// PEFT adapter directories.
export { savePeftAdapter, loadPeftAdapter, peftAdapterConfig, readPeftConfig } from './peft-io.js';
// Fresh weights for pretraining from scratch.
export { initWeights } from './init-weights.js';
// Byte-level BPE vocabulary training (output loads through @huggingface/tokenizers).
export type { BpeTrainOptions } from './bpe-trainer.js';
export { trainByteLevelBpe, bytesToUnicode } from './bpe-trainer.js';
// Sampling text from a model.
export type { GenerateOptions } from './generate.js';
export { generate, sample } from './generate.js';
