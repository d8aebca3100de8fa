// The institution's node: a LocalTrainer backed by the real model.
export type { ModelTrainerOptions } from './model-trainer.js';
export { ModelTrainer } from './model-trainer.js';
// Config file (zod schema, YAML, env overrides).
export type { ClientConfig } from './config.js';
export { ClientConfigSchema, loadClientConfig } from './config.js';
// Running a node from its config file.
export { PlanFollowingTrainer, runClientFromConfig } from './run-from-config.js';
// Institution-level DP on the data owner's side: budget check, clipping, own ledger.
export { PrivacyGuardedTrainer } from './privacy-trainer.js';
// Record-level DP-SGD on the data owner's side: own record-level budget and ledger.
export type { DpSgdTrainerOptions } from './dp-sgd-trainer.js';
export { DpSgdTrainer, DEFAULT_DP_SGD_CLIP_NORM } from './dp-sgd-trainer.js';
export { ReleasedUpdate, releaseKey } from './released-update.js';
// Federated evaluation: every global adapter scored on the institution's held-out sets, aggregates sent with the update.
export type { FederatedEvalSets } from './federated-eval.js';
export { EvaluatingTrainer, evaluateGlobal } from './federated-eval.js';
// An institution's privacy guards (institution-level and record-level budgets), opened in one place.
export type { ClientGuardsOptions, GuardSpec } from './client-guards.js';
export { openClientGuards } from './client-guards.js';
// The composition root: one institution's node from an in-memory spec (used by `fedlora client` and `simulate`).
export type { BuiltClient, ClientSpec, OpenedGuards } from './build-client.js';
export { buildClient } from './build-client.js';
// Many institutions from one process (`fedlora client --fleet FILE`), each its own node; one shared base model.
export type { FleetSlice } from './fleet-config.js';
export { loadFleetConfig, parseFleetSlice } from './fleet-config.js';
export type { FleetMemberResult } from './run-fleet.js';
export { runFleet } from './run-fleet.js';
