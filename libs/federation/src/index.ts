// Domain types of a federation round.
export type { TensorLayout, RoundPlan, PlanParts, PlannedTraining, PlannedLora, SecureRoundPlan, ClientReport, SecAggReply, AdaptiveClippingStep, Task, CheckInAnswer, UpdateHeader, ClientUpdate, RoundSummary, ClientRecord } from './types.js';
// Typed errors (the transport maps codes to gRPC statuses in one place).
export type { FederationErrorCode } from './errors.js';
export { FederationError } from './errors.js';
// Time and logging as parameters.
export type { Clock, EventLogger } from './clock.js';
export { systemClock, silentLogger } from './clock.js';
// Server optimizers (FedAvg, FedAdam, FedYogi, FedAdagrad; FedProx is FedAvg on the server).
export type { ServerStrategy, StrategyOptions, StrategyState } from './strategy.js';
export { createStrategy } from './strategy.js';
/** The byte form of a server optimizer's state, committed with each checkpoint. */
export { decodeStrategyState, encodeStrategyState } from './strategy-state.js';
// Aggregation of updates within a round.
export { WeightedMeanAggregator } from './aggregator.js';
export type { RoundAggregation, RoundAggregationFactory, AggregateResult } from './round-aggregation.js';
export { weightedFedAvg, exampleWeightCap, MAX_WEIGHT_OVER_MEDIAN } from './round-aggregation.js';
export { MAX_NUM_EXAMPLES } from './validate-update.js';
// The coordinator's round loop and the client loop, both transport-agnostic.
export type { CoordinatorOptions } from './coordinator.js';
export { FederationCoordinator, MAX_CHECK_IN_BATCH } from './coordinator.js';
export type { CoordinatorConnection, LocalTrainer, TrainingProgress, ClientRunnerOptions } from './client-runner.js';
export { runClient } from './client-runner.js';
export { inProcessConnection } from './in-process-connection.js';
// Institution-level DP-FedAvg with central (coordinator-added) noise.
export type { CentralDpOptions } from './central-dp-aggregation.js';
export { centralDpAggregation } from './central-dp-aggregation.js';
// Adaptive clipping over secure aggregation (distributed noise): the noisy count rides in the secure sum.
export { secureAdaptiveClipping } from './secure-adaptive-clipping.js';
// Secure aggregation (SecAgg+) of a round: coordinator side and client side.
export type { SecureAggregationOptions } from './secure-round.js';
export type { SecAggExchange, SecureClientOptions } from './secure-client.js';
export { runSecureRound, flattenInPlanOrder, securePlanRefusal } from './secure-client.js';
// Membership the coordinator cannot forge: the authority-signed member list and each client's own floors on secure plans.
export type { Member, MemberList, SignedMemberList } from './member-list.js';
export { MEMBER_LIST_KIND, memberListSigningBytes, signMemberList, verifyMemberList, loadMemberList } from './member-list.js';
export type { SecureMinimums } from './secure-membership.js';
export { DEFAULT_SECURE_MINIMUMS, securePlanProblem } from './secure-membership.js';
// LoRA variants: which adapter tensors an update carries (FFA-LoRA: only B).
export type { LoraVariant } from './lora-variant.js';
export { plannedLoraVariant, updateLayout, updateTensors, updateDimension, planUpdate } from './lora-variant.js';
// DP parameters of a round as both sides derive them from the plan.
export type { PlannedPrivacy } from './plan-privacy.js';
export { plannedPrivacy, roundPrivacyParams, plannedSurvivors, noiseShareFor, reportsClipIndicator, CLIP_INDICATOR_METRIC } from './plan-privacy.js';
// An institution's own privacy policy, held against every plan (the coordinator is not trusted).
export type { ClientPrivacyPolicy } from './client-privacy-policy.js';
export { DEFAULT_CLIENT_PRIVACY_POLICY, validateClientPrivacyPolicy, planPolicyViolation, institutionAccountedParams, attemptId, ledgerHeadViolation } from './client-privacy-policy.js';
// Federated evaluation: institutions' held-out metrics combined per round.
export type { RoundEvaluation } from './round-evaluation.js';
// ... and under SecAgg+, summed inside the masked inputs (the words after each encoded update).
export { SECURE_EVAL_WORD_COUNT } from './secure-evaluation.js';

export type { CohortSampling, SamplingMode } from './cohort-sampling.js';
export { drawCohort } from './cohort-sampling.js';
