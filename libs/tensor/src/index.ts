// Named tensors in host memory: layout checks, hashing, arithmetic.
export type { HostTensor, NamedTensors } from './named-tensors.js';
export {
  sizeOf,
  hostTensor,
  cloneNamed,
  numElements,
  assertSameLayout,
  findNonFinite,
  sha256Named,
  subtractNamed,
  addScaledNamed,
  l2NormNamed,
} from './named-tensors.js';
// Streaming tensors in chunks below gRPC's message limit.
export type { TensorChunkData } from './chunking.js';
export { chunkTensors, TensorAssembler, ChunkStreamError, DEFAULT_CHUNK_BYTES } from './chunking.js';
// Randomness as a parameter.
export type { RandomBytes } from './random.js';
export { cryptoRandomBytes, seededRandomBytes, uniform01, uniformInt, shuffleInPlace } from './random.js';
// safetensors read/write (F32/F16/BF16 in, upcast to float32).
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsHeader } from './safetensors.js';
export {
  SafetensorsError,
  readSafetensorsHeader,
  decodeSafetensorsEntry,
  parseSafetensors,
  serializeSafetensors,
  halfToFloat,
  floatToHalf,
  floatToBfloat16,
} from './safetensors.js';
