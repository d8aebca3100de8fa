// The composition root: core + gRPC server + dashboard + metrics + round loop, from an in-memory spec
// (used by `fedlora coordinator` through startCoordinatorFromConfig, and by `simulate`).
export type { CoordinatorSpec, BuiltCoordinator } from './build-coordinator.js';
export { buildCoordinator } from './build-coordinator.js';
// Structured logs (pino, stderr).
export type { LogLevel } from './logger.js';
export { createEventLogger } from './logger.js';
// Config file (zod schema, YAML, env overrides) and starting from it.
export type { CoordinatorConfig } from './config.js';
export { CoordinatorConfigSchema, loadCoordinatorConfig, parseCoordinatorConfig, ConfigError } from './config.js';
export type { ConfiguredCoordinator } from './run-from-config.js';
export { startCoordinatorFromConfig } from './run-from-config.js';
// Operations: Prometheus metrics and the /metrics + /healthz HTTP endpoint.
export type { CoordinatorMetrics, CoordinatorStatusView } from './metrics.js';
export { createCoordinatorMetrics, RUN_STATES } from './metrics.js';
export type { HealthReport, MetricsServerOptions, RunningMetricsServer } from './metrics-server.js';
export { startMetricsServer, coordinatorHealth, parseHostPort } from './metrics-server.js';
// Refusals to the audit log, throttled per reason and client.
export type { RefusalAudit, RefusalAuditOptions, RefusalInfo } from './refusal-audit.js';
export { createRefusalAudit } from './refusal-audit.js';
// Persistence wiring (store <-> round loop).
export type { PersistenceHooks } from './persistence.js';
export { attachStore } from './persistence.js';
// Institution-level DP on the coordinator: plan parameters, central noise, federation ledger.
export type { FederationPrivacy } from './federation-privacy.js';
export { calibrateCentralDpFedAvg, createFederationPrivacy, distributedNoiseStddevPerClient } from './federation-privacy.js';
// The read-only web dashboard (config key `dashboard`) and the charts it shares with `fedlora audit --html`.
export type { DashboardRole, AuthVerdict, DashboardAuthOptions } from './dashboard/dashboard-auth.js';
export { createDashboardAuth } from './dashboard/dashboard-auth.js';
export type { EpsilonPoint, EpsilonSeries, TrainingPoint } from './dashboard/charts.js';
export { epsilonChartSpec, budgetChartSpec, trainingChartSpecs, renderSvg, pointLabel } from './dashboard/charts.js';
export type { DashboardServerOptions, RunningDashboard, DashboardRefusal } from './dashboard/dashboard-server.js';
export { startDashboardServer } from './dashboard/dashboard-server.js';
export type { DashboardSource, DashboardSnapshot, DashboardCoordinatorView } from './dashboard/dashboard-state.js';
export { buildSnapshot, countRefusals } from './dashboard/dashboard-state.js';
export type { LedgerView, PrivacyView, RefusalView } from './dashboard/ledger-view.js';
export { createLedgerReader, ledgerView } from './dashboard/ledger-view.js';
export type { CoordinatorDashboardOptions } from './dashboard/start-dashboard.js';
export { startCoordinatorDashboard } from './dashboard/start-dashboard.js';
export { isLoopbackHost } from './config.js';
