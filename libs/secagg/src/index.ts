// Errors: every rejection names the failed check.
export type { SecAggCheck } from './errors.js';
/** Typed protocol error with the name of the failed check. */
export { SecAggError } from './errors.js';

// Shamir secret sharing over GF(2^521 - 1).
export type { ShamirShare } from './shamir.js';
/** Split a secret into t-of-n shares / recombine them. */
export { shamirSplit, shamirCombine, shamirCombineMany, SHAMIR_PRIME } from './shamir.js';

// Key agreement, derivation, signatures, share encryption.
export type { X25519KeyPair, AdvertisedKeys } from './key-agreement.js';
/** X25519, HKDF, session id, Ed25519 and box helpers used by the protocol. */
export {
  generateX25519,
  x25519PublicKey,
  x25519Agree,
  x25519Agreer,
  hkdf,
  computeSessionId,
  sign,
  verify,
  advertiseSigningBytes,
  commitSeed,
  boxSharedKey,
  boxKeyFromShared,
  boxSeal,
  boxOpen,
} from './key-agreement.js';

// Mask expansion (AES-256-CTR) in Z_(2^32).
export type { MaskTerm } from './mask-prg.js';
/** Add/subtract PRG masks into a Uint32Array; raw keystream baseline for benchmarks. */
export { addMask, addMasks, addMasksScalar, expandMask, rawKeystream, PRG_BLOCK_WORDS } from './mask-prg.js';
/** Whether the WebAssembly SIMD mask kernel is in use on this runtime. */
export { simdAvailable } from './simd-add.js';

// SecAgg+ graph and parameters.
export type { Neighbourhoods } from './harary-graph.js';
/** Random k-regular Harary graph over a cohort (k >= n-1: complete graph). */
export { hararyNeighbours, hararyNeighboursOf } from './harary-graph.js';
export type { SecAggParams, SecAggParamsInput } from './params.js';
/** Choose neighbourhood size k and threshold t (Bell et al. 2020 conditions, exact tails). */
export { chooseSecAggParams, binomialUpperTail, secAggSecurityFailure } from './params.js';
/** The graph seed every party derives from the cohort's identity keys and the round. */
export { deriveGraphSeed } from './graph-seed.js';

// Distributed-DP encoding.
/** Randomized Hadamard rotation and its inverse. */
export { rotate, unrotate, fwht, paddedDimension } from './hadamard.js';
export type { EncodingParams, EncodingParamsInput, EncodeOptions } from './encoding.js';
/** Clip -> rotate -> scale -> conditional rounding -> noise -> wrap, and the server inverse. */
export {
  chooseEncodingParams,
  encodeUpdate,
  decodeAverage,
  plannedAverageNoiseStd,
  clipL2,
  conditionalStochasticRound,
  conditionalRoundingBound2,
} from './encoding.js';

// Protocol messages (plain data) and their strict serializers.
export type {
  Stage,
  ServerMsg,
  ClientMsg,
  RoundConfigMsg,
  KeyListMsg,
  ShareDeliveryMsg,
  SurvivorsMsg,
  UnmaskRequestMsg,
  AbortMsg,
  AdvertiseMsg,
  ShareKeysMsg,
  MaskedChunkMsg,
  ConsistencyMsg,
  UnmaskSharesMsg,
  SignedKeys,
} from './messages.js';
/** Deterministic serializer / strict parser for every protocol message; stage list. */
export { encodeMessage, parseMessage, STAGES, CLIENT_MSG_STAGE } from './messages.js';
/** Wire-format version byte of every message. */
export { WIRE_VERSION } from './wire.js';

// State machines.
export type { SecAggClientConfig, ClientReply, ClientStage } from './client.js';
/** Client state machine for one round; Ed25519 identity generator. */
export { SecAggClient, generateIdentity, DEFAULT_CHUNK_WORDS } from './client.js';
export type { SecAggServerConfig, ServerReply, ServerStage, SecAggResult, UsedKeyRegistry } from './server.js';
/** Server state machine for one round (running O(d) sum, caller-driven deadlines). */
export { SecAggServer } from './server.js';
export type { RunRoundOptions, RunRoundOutcome } from './run-round.js';
/** In-process driver of a whole round (tests, simulations, benchmarks). */
export { runSecAggRound } from './run-round.js';
