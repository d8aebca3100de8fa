// Data: text/JSONL files packed into fixed-length sequences.
export type { TextFileOptions } from './data.js';
export { tokenizeToSequences, readTextDocuments, splitHeldOut } from './data.js';
// Privacy units: records read and packed so that no sequence mixes two units (document, field, sequence).
export type { UnitRecord, UnitData, PrivacyUnitSpec } from './privacy-units.js';
export { readUnitRecords, packUnits, splitRecordsByUnit } from './privacy-units.js';
// AdamW over tfjs variables.
export { AdamW } from './adamw.js';
// Local LoRA training (one loop, trainer-loop.ts, with a plain or a DP-SGD gradient source) and evaluation.
export type { StepInfo } from './trainer.js';
export { trainLocal, evaluate } from './trainer.js';
// Training a whole model from scratch (the project's base model).
export { pretrain } from './pretrain.js';
// Perplexity of a whole text in non-overlapping context windows.
export { textPerplexity } from './perplexity.js';
// Record-level DP-SGD for LoRA (Poisson sampling, per-example clipping, exact grid Gaussian noise).
export type { DpSgdStepInfo, DpSgdTrainOptions } from './dp-sgd.js';
export { trainLocalDpSgd, dpSgdParams, loraDimension, DEFAULT_MAX_SEQUENCES_PER_UNIT } from './dp-sgd.js';
/** Wall-clock time per phase of DP-SGD steps (profiling). */
export type { DpSgdPhase, DpSgdPhaseTimes, DpSgdProfiler } from './dp-sgd-phases.js';
export { DP_SGD_PHASES, emptyPhaseTimes } from './dp-sgd-phases.js';
/** How per-example gradients are clipped: ghost clipping from one batched pass (default) or per example. */
export type { PerExampleMethod } from './dp-sgd-grads.js';
// Instruction data: prompt-completion, chat messages (chat templates), Alpaca.
export {
  INSTRUCT_FORMATS,
  isInstructFormat,
  readJsonl,
  instructSegments,
  maskedSequences,
  readInstructExamples,
  instructTrainingSequences,
} from './instruct-data.js';
// Scoring: per-example log-likelihoods and completion-only loss.
export { completionLoss } from './scoring.js';
// Evaluation harness: multiple choice by log-likelihood (acc, acc_norm), exact match.
export type { McqItem } from './eval-harness.js';
export { parseMcqItem, evaluateMcq, parseExactMatchItem, evaluateExactMatch } from './eval-harness.js';
