// Data: text/JSONL files packed into fixed-length sequences.
export type { TextFileOptions } from './data.js';
export { tokenizeToSequences, packTokens, readTextDocuments, splitHeldOut } from './data.js';
// Privacy units: records read and packed so that no sequence mixes two units (document, field, sequence).
export type { UnitRecord, UnitData, PrivacyUnitSpec } from './privacy-units.js';
export { readUnitRecords, packUnits, groupRecords, splitRecordsByUnit, validateUnitSpec } from './privacy-units.js';
// Learning-rate schedule: linear warmup + cosine decay.
export { warmupCosine } from './schedule.js';
// AdamW over tfjs variables.
export type { AdamWOptions, AdamWState } from './adamw.js';
export { AdamW } from './adamw.js';
// The one training loop, with a pluggable gradient source (plain training and DP-SGD are two sources).
export type { GradientSource, StepGradients, LoopStepInfo, LoopOptions, LoopResult } from './trainer-loop.js';
export { runTrainingLoop } from './trainer-loop.js';
// Local LoRA training and evaluation.
export type { StepInfo, TrainOptions, TrainResult, TrainState } from './trainer.js';
export { trainLocal, evaluate, toTensors } from './trainer.js';
// Training a whole model from scratch (the project's base model).
export type { PretrainOptions } from './pretrain.js';
export { pretrain } from './pretrain.js';
// Perplexity of a whole text in non-overlapping context windows.
export { textPerplexity } from './perplexity.js';
// Saving and resuming a training run.
export { saveTrainState, loadTrainState } from './train-state.js';
// Record-level DP-SGD for LoRA (Poisson sampling, per-example clipping, exact grid Gaussian noise).
export type { DpSgdStepInfo, DpSgdTrainOptions, DpSgdTrainResult } from './dp-sgd.js';
export { trainLocalDpSgd, dpSgdParams, loraDimension, DEFAULT_MAX_SEQUENCES_PER_UNIT } from './dp-sgd.js';
export type { PrivateGradientOptions, PrivateGradient, PerExampleMethod } from './dp-sgd-grads.js';
export { privateLoraGradient, perExampleLoraGrads } from './dp-sgd-grads.js';
/** Per-example clipping from one batched pass (ghost clipping through the model's LoRA tap). */
export type { ClippedSumMethod, GhostClipOptions, GhostClipResult, GhostCompute } from './dp-sgd-ghost.js';
export { ghostClippedLoraGradSum } from './dp-sgd-ghost.js';
// Loss masks inside sequences (completion-only training).
export { maskedId, tokenIdOf, tokenIds, trainedTargets, hasLossMask, withLossMask } from './loss-mask.js';
// Instruction data: prompt-completion, chat messages (chat templates), Alpaca.
export type { InstructFormat, InstructSequences } from './instruct-data.js';
export {
  INSTRUCT_FORMATS,
  isInstructFormat,
  readJsonl,
  instructSegments,
  tokenizeSegments,
  fitToContext,
  maskedSequences,
  padMasked,
  readInstructExamples,
  instructTrainingSequences,
} from './instruct-data.js';
// Scoring: per-example log-likelihoods and completion-only loss.
export type { SequenceScores, ScoreOptions } from './scoring.js';
export { scoreSequences, completionLoss } from './scoring.js';
// Evaluation harness: multiple choice by log-likelihood (acc, acc_norm), exact match.
export type { McqItem, McqResult, ExactMatchItem } from './eval-harness.js';
export { parseMcqItem, mcqContext, evaluateMcq, parseExactMatchItem, evaluateExactMatch } from './eval-harness.js';
