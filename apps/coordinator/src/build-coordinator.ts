import type * as grpc from '@grpc/grpc-js';
import type { CausalLM, LoraConfig } from '@fedlora/model';
import { initLoraAdapter, savePeftAdapter } from '@fedlora/model';
import type { CoordinatorOptions, EventLogger, PlanParts, RoundAggregationFactory, SecureAggregationOptions, RoundPlan, RoundSummary, ServerStrategy, StrategyOptions } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, silentLogger } from '@fedlora/federation';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { cryptoRandomBytes, seededRandomBytes } from '@fedlora/tensor';
import type { FederationServerOptions, RunningServer } from '@fedlora/transport-grpc';
import { startFederationServer } from '@fedlora/transport-grpc';
import type { Registry } from 'prom-client';
import type { CoordinatorDashboardOptions } from './dashboard/start-dashboard.js';
import { startCoordinatorDashboard } from './dashboard/start-dashboard.js';
import type { RunningDashboard } from './dashboard/dashboard-server.js';
import { coordinatorHealth, startMetricsServer, type RunningMetricsServer } from './metrics-server.js';

/**
 * Everything a coordinator needs, already validated: `fedlora coordinator` builds it from its
 * YAML (run-from-config.ts: store, privacy, TLS, enrolment), `fedlora simulate` in memory.
 */
export interface CoordinatorSpec {
  federationId: string;
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  credentials?: grpc.ServerCredentials;
  model: CausalLM;
  lora: LoraConfig;
  rounds: number;
  minClients: number;
  minAvailableClients?: number;
  /** A client not heard from for this long is not drawn into new rounds (default 60 s; see CoordinatorOptions.livenessMs). */
  livenessMs?: number;
  clientsPerRound?: number;
  /** How clientsPerRound is drawn (default uniform). */
  sampling?: 'uniform' | 'poisson';
  roundDeadlineMs: number;
  waitAfterMinimumMs?: number;
  localSteps: number;
  learningRate: number;
  batchSize: number;
  /** The server optimizer, or its options (a built one carries state restored from the store). */
  strategy: StrategyOptions | ServerStrategy;
  /** Seed of the initial LoRA A matrices (every client starts from the same global adapter). */
  seed?: string | number;
  initialAdapter?: NamedTensors;
  startAfterRound?: number;
  /** Round attempts that ended before a restart (from the store), for the history `status` reports. */
  previousRounds?: RoundSummary[];
  /** After a restart: clients the first round waits for (see CoordinatorOptions.rejoin). */
  rejoin?: CoordinatorOptions['rejoin'];
  /** Membership asked at every call and cohort draw (revocation takes effect at once; see CoordinatorOptions.isMember). */
  isMember?: CoordinatorOptions['isMember'];
  aggregation?: RoundAggregationFactory;
  secureAggregation?: SecureAggregationOptions;
  planParts?: (round: number) => PlanParts;
  onRoundStart?: (plan: RoundPlan, cohort: string[]) => void;
  onRoundEnd?: (summary: RoundSummary, adapter: NamedTensors | null, plan: RoundPlan) => Promise<void> | void;
  /** Admission check at registration (enrolment, revocation, mTLS identity). */
  authorizeRegister?: FederationServerOptions['authorizeRegister'];
  /** Refused requests (audit log). */
  onRefused?: FederationServerOptions['onRefused'];
  /** Per-request signature verification (enrolled federations); see transport-grpc request-auth.ts. */
  verifier?: FederationServerOptions['verifier'];
  /** Tensor payload bytes over the wire (metrics). */
  onBytes?: FederationServerOptions['onBytes'];
  /** Bound on the bytes all uploads in progress hold together (default: transport-grpc's 512 MiB). */
  maxUploadBytes?: number;
  /** An upload stream with no message for this long is ended and its buffers freed (default 60 s). */
  uploadIdleMs?: number;
  /** No upload stream stays open longer than this (default 15 minutes). */
  uploadStreamMaxMs?: number;
  /** Where the final adapter is written in PEFT format when the run finishes. */
  outputDir?: string;
  logger?: EventLogger;
  rng?: RandomBytes;
  /** The read-only web dashboard, started on this coordinator (config key `dashboard`, `simulate --dashboard`). */
  dashboard?: Omit<CoordinatorDashboardOptions, 'coordinator' | 'uploadBufferedBytes' | 'logger'>;
  /** The Prometheus /metrics + /healthz endpoint (config key `metrics`); `startedAt` is reported by /healthz. */
  metrics?: { listen: string; registry: Registry; startedAt: number };
}

/** A started coordinator: the gRPC server is listening; `done` settles when the run ends. */
export interface BuiltCoordinator {
  port: number;
  coordinator: FederationCoordinator;
  server: RunningServer;
  done: Promise<RoundSummary[]>;
  /** The dashboard, when the spec asks for one. */
  dashboard?: RunningDashboard;
  /** The operations endpoint, when the spec asks for one. */
  metrics?: RunningMetricsServer;
  /** Stops the round loop and the gRPC server (the dashboard and metrics stay up until `close`). */
  stopServing(): Promise<void>;
  /** Stops everything: dashboard, metrics, round loop, gRPC server. */
  close(): Promise<void>;
}

/**
 * The coordinator's composition root: builds the core (FederationCoordinator with its strategy,
 * round protocol and privacy hooks), puts the gRPC server in front of it, starts the dashboard
 * and the metrics endpoint if asked, and starts the round loop. The one place a coordinator is
 * constructed, for `fedlora coordinator` and `fedlora simulate` alike.
 */
export async function buildCoordinator(o: CoordinatorSpec): Promise<BuiltCoordinator> {
  const log = o.logger ?? silentLogger;
  const initialAdapter = o.initialAdapter ?? initLoraAdapter(o.model, o.lora, o.seed === undefined ? cryptoRandomBytes : seededRandomBytes(`lora-init:${o.seed}`));
  const opts: CoordinatorOptions = {
    federationId: o.federationId,
    rounds: o.rounds,
    minClients: o.minClients,
    minAvailableClients: o.minAvailableClients,
    ...(o.livenessMs !== undefined ? { livenessMs: o.livenessMs } : {}),
    clientsPerRound: o.clientsPerRound,
    ...(o.sampling ? { sampling: o.sampling } : {}),
    roundDeadlineMs: o.roundDeadlineMs,
    waitAfterMinimumMs: o.waitAfterMinimumMs,
    localSteps: o.localSteps,
    learningRate: o.learningRate,
    batchSize: o.batchSize,
    strategy: 'apply' in o.strategy ? o.strategy : createStrategy(o.strategy),
    initialAdapter,
    startAfterRound: o.startAfterRound,
    previousRounds: o.previousRounds,
    rejoin: o.rejoin,
    isMember: o.isMember,
    aggregation: o.aggregation,
    secureAggregation: o.secureAggregation,
    planParts: o.planParts,
    onRoundStart: o.onRoundStart,
    onRoundEnd: o.onRoundEnd,
    logger: log,
    rng: o.rng,
  };
  const coordinator = new FederationCoordinator(opts);
  const server = await startFederationServer(coordinator, {
    address: o.listen,
    credentials: o.credentials,
    authorizeRegister: o.authorizeRegister,
    verifier: o.verifier,
    onBytes: o.onBytes,
    maxUploadBytes: o.maxUploadBytes,
    uploadIdleMs: o.uploadIdleMs,
    uploadStreamMaxMs: o.uploadStreamMaxMs,
    onUploadEvent: (e) => {
      // A completed upload is already logged by the core as update.received.
      if (e.event === 'upload.resumed') log.info({ event: e.event, round: e.round, client: e.clientId, uploadId: e.uploadId, offset: e.offset });
    },
    onRefused: (r) => {
      log.warn({ event: 'request.refused', method: r.method, client: r.clientId, code: r.code, reason: r.reason, details: r.details });
      o.onRefused?.(r);
    },
  });
  log.info({ event: 'coordinator.listening', port: server.port, federationId: o.federationId });
  let serving = true;
  const stopServing = async (): Promise<void> => {
    if (!serving) return;
    serving = false;
    coordinator.stop();
    await server.close();
  };
  let metrics: RunningMetricsServer | undefined;
  let dashboard: RunningDashboard | undefined;
  try {
    if (o.metrics) {
      const startedAt = o.metrics.startedAt;
      metrics = await startMetricsServer({
        listen: o.metrics.listen,
        registry: o.metrics.registry,
        health: () => coordinatorHealth(coordinator.status(), { grpcPort: server.port, startedAt }),
        onError: (err) => log.error({ event: 'metrics.error', message: String(err) }),
      });
      log.info({ event: 'metrics.listening', port: metrics.port });
    }
    if (o.dashboard) dashboard = await startCoordinatorDashboard({ ...o.dashboard, coordinator, uploadBufferedBytes: () => server.uploads.heldBytes, logger: log });
  } catch (err) {
    await metrics?.close();
    await stopServing();
    throw err;
  }
  const done = coordinator.run().then(async (history) => {
    if (o.outputDir && coordinator.status().state === 'finished') {
      await savePeftAdapter(o.outputDir, o.model, o.lora, coordinator.adapter);
      log.info({ event: 'adapter.saved', dir: o.outputDir });
    }
    return history;
  });
  return {
    port: server.port,
    coordinator,
    server,
    done,
    ...(dashboard ? { dashboard } : {}),
    ...(metrics ? { metrics } : {}),
    stopServing,
    close: async () => {
      await dashboard?.close();
      await metrics?.close();
      await stopServing();
    },
  };
}
