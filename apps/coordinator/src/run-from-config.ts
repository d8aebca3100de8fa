import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerUnaryCall } from '@grpc/grpc-js';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel } from '@fedlora/model';
import { cryptoRandomBytes, seededRandomBytes } from '@fedlora/tensor';
import { configureProtection, type ConfiguredProtection } from './config-protection.js';
import type { RoundSummary } from '@fedlora/federation';
import { FederationError, createStrategy, updateDimension, updateLayout } from '@fedlora/federation';
import type { DataDirLock } from '@fedlora/store';
import { acquireDataDirLock, openSqliteStore } from '@fedlora/store';
import { RequestVerifier, insecureServerCredentials, loadServerCredentials, peerCertificateCommonName } from '@fedlora/transport-grpc';
import { CoordinatorConfigSchema, type CoordinatorConfig } from './config.js';
import { appliedEnvOverrides } from '@fedlora/config';
import type { BuiltCoordinator } from './build-coordinator.js';
import { buildCoordinator } from './build-coordinator.js';
import type { LogLevel } from './logger.js';
import { createEventLogger } from './logger.js';
import { createCoordinatorMetrics } from './metrics.js';
import { attachStore } from './persistence.js';
import { createRefusalAudit } from './refusal-audit.js';

/** A coordinator started from its config file. */
export interface ConfiguredCoordinator {
  app: BuiltCoordinator;
  backend: string;
  done: Promise<RoundSummary[]>;
  /** Port of the /metrics + /healthz endpoint when `metrics.listen` is configured. */
  metricsPort?: number;
  /** URL of the web dashboard when `dashboard` is configured. */
  dashboardUrl?: string;
  close(): Promise<void>;
}

/**
 * Starts the coordinator a config file describes: backend, base model, SQLite store in dataDir
 * (resuming after the last committed round), TLS or (loudly) plaintext, enrolment, round loop.
 */
export async function startCoordinatorFromConfig(cfg: CoordinatorConfig): Promise<ConfiguredCoordinator> {
  mkdirSync(cfg.dataDir, { recursive: true });
  // One coordinator per data directory: StoreError('busy') names the pid and host holding it.
  const lock = acquireDataDirLock(cfg.dataDir);
  return startLocked(cfg, lock).catch((err: unknown) => {
    lock.release();
    throw err;
  });
}

async function startLocked(cfg: CoordinatorConfig, lock: DataDirLock): Promise<ConfiguredCoordinator> {
  const startedAt = Date.now();
  const level = (cfg.log.level === 'trace' ? 'debug' : cfg.log.level === 'fatal' ? 'error' : cfg.log.level) as LogLevel;
  const log = createEventLogger(level, { component: 'coordinator', federationId: cfg.federationId });
  const backend = await initBackend();
  const envApplied = appliedEnvOverrides(CoordinatorConfigSchema, process.env, 'COORDINATOR');
  if (envApplied.length > 0) log.info({ event: 'config.env', applied: envApplied });
  log.info({ event: 'backend.selected', backend: backend.name });
  const model = await loadModel(cfg.model.baseModelDir ?? DEFAULT_BASE_MODEL_DIR);
  const lora = { ...defaultLoraConfig(model), ...cfg.model.lora, targetModules: cfg.model.lora.targetModules ?? defaultLoraConfig(model).targetModules };
  const store = openSqliteStore(join(cfg.dataDir, 'fedlora.db'));
  store.saveFederation({ id: cfg.federationId, config: cfg, state: 'running' });
  for (const c of cfg.clients) store.upsertClient({ name: c.name, publicKey: c.publicKey });
  const seed = cfg.model.seed;
  const strategy = createStrategy({ name: cfg.strategy.name, serverLearningRate: cfg.strategy.serverLearningRate, beta1: cfg.strategy.beta1, beta2: cfg.strategy.beta2, tau: cfg.strategy.tau });
  // The store restores the optimizer's state with the last checkpoint; the ledger is needed before the first commit.
  const ledger: Pick<ConfiguredProtection, 'recordRound'> = { recordRound: async () => undefined };
  const persistence = attachStore(store, log, { strategy, recordLedger: (summary, plan) => ledger.recordRound(summary, plan) });
  const initialAdapter = persistence.resumeAdapter ?? initLoraAdapter(model, lora, seed === undefined ? cryptoRandomBytes : seededRandomBytes(`lora-init:${seed}`));
  // The DP dimension is that of an update: with FFA-LoRA only the B matrices travel.
  const protection = await configureProtection(cfg, store, updateDimension(updateLayout(initialAdapter, lora.variant)));
  ledger.recordRound = protection.recordRound;

  const credentials = cfg.tls
    ? loadServerCredentials({ ca: cfg.tls.ca, cert: cfg.tls.cert, key: cfg.tls.key, requireClientCert: cfg.tls.requireClientCert })
    : insecureServerCredentials((message) => log.warn({ event: 'tls.disabled', message }));
  const enrolled = cfg.clients.length > 0;
  // With enrolled clients every RPC must be signed; enrolment and revocation are read from the store at each call.
  const verifier = enrolled ? new RequestVerifier({ federationId: cfg.federationId, identities: store, nonces: store }) : undefined;
  const metrics = createCoordinatorMetrics();
  const auditRefusal = createRefusalAudit({ append: (e) => store.appendAudit(e) });

  const authorizeRegister = (name: string, call: ServerUnaryCall<unknown, unknown>): void => {
    if (!enrolled) return;
    const c = store.getClient(name);
    if (!c) throw new FederationError('permission-denied', `client "${name}" is not enrolled in this federation`);
    if (c.status === 'revoked') throw new FederationError('permission-denied', `client "${name}" has been revoked`);
    if (cfg.tls?.requireClientCert) {
      const cn = peerCertificateCommonName(call);
      if (cn !== name) throw new FederationError('unauthenticated', `the client certificate is not issued to "${name}"`);
    }
  };

  // The composition root (build-coordinator.ts), as `simulate` builds its coordinator.
  const app = await buildCoordinator({
    federationId: cfg.federationId,
    listen: cfg.listen,
    credentials,
    model,
    lora,
    rounds: cfg.rounds.total,
    minClients: cfg.rounds.minClients,
    clientsPerRound: cfg.rounds.clientsPerRound,
    sampling: cfg.rounds.sampling,
    roundDeadlineMs: cfg.rounds.deadlineSeconds * 1000,
    waitAfterMinimumMs: cfg.rounds.waitAfterMinimumSeconds > 0 ? cfg.rounds.waitAfterMinimumSeconds * 1000 : undefined,
    localSteps: cfg.rounds.localSteps,
    learningRate: cfg.rounds.learningRate,
    batchSize: cfg.rounds.batchSize,
    strategy,
    seed: cfg.model.seed,
    initialAdapter,
    startAfterRound: persistence.startAfterRound,
    previousRounds: persistence.previousRounds,
    rejoin: { clients: persistence.rejoinClients, graceMs: cfg.rounds.rejoinGraceSeconds * 1000 },
    // Revocation (written to the store, also by `fedlora provision --revoke` while this runs) takes the client out of the live set at once.
    ...(enrolled ? { isMember: (name: string) => store.getClient(name)?.status === 'enrolled' } : {}),
    aggregation: protection.aggregation,
    maxUploadBytes: cfg.uploads.maxBufferedMB * 1024 * 1024,
    uploadIdleMs: cfg.uploads.idleSeconds * 1000,
    uploadStreamMaxMs: cfg.uploads.maxStreamSeconds * 1000,
    secureAggregation: protection.secureAggregation,
    // plannedRounds: a client with only a DP-SGD budget (`dpSgd: {epsilon}`) spreads it over these rounds.
    planParts: () => ({ training: { lora, seqLen: cfg.rounds.seqLen, proximalMu: cfg.strategy.proximalMu ?? 0, plannedRounds: cfg.rounds.total }, ...protection.planExtra() }),
    onRoundStart: (plan, cohort) => persistence.onRoundStart(plan, cohort),
    onRoundEnd: async (summary, adapter, plan) => {
      await persistence.endRound(summary, adapter, plan);
      if (protection.ledgerPath) log.info({ event: 'privacy.recorded', round: summary.round, epsilon: protection.epsilon() });
      metrics.roundEnded(summary);
    },
    outputDir: join(cfg.dataDir, 'final-adapter'),
    logger: log,
    authorizeRegister,
    verifier,
    onBytes: (direction, n) => metrics.bytes(direction, n),
    onRefused: (r) => {
      metrics.refused(r);
      auditRefusal(r); // throttled per reason and client: a flood cannot become a flood of fsyncs
    },
    ...(cfg.metrics ? { metrics: { listen: cfg.metrics.listen, registry: metrics.registry, startedAt } } : {}),
    ...(cfg.dashboard
      ? {
          dashboard: {
            listen: cfg.dashboard.listen,
            auth: cfg.dashboard.auth,
            tls: cfg.dashboard.tls && cfg.tls ? { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key), ca: readFileSync(cfg.tls.ca) } : undefined,
            ledgerPaths: () => (protection.ledgerPath ? [protection.ledgerPath] : []),
            auditRecords: () => store.listAudit({ limit: 5000 }),
            auditRefusal,
            enrolled: () => (enrolled ? store.listClients().filter((c) => c.status !== 'revoked').map((c) => c.name) : null),
          },
        }
      : {}),
  }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  metrics.observe(() => ({ ...app.coordinator.status(), uploadBufferedBytes: app.server.uploads.heldBytes }));
  const done = app.done.then((h) => {
    store.saveFederation({ id: cfg.federationId, config: cfg, state: 'finished' });
    return h;
  });
  return {
    app,
    backend: backend.name,
    done,
    metricsPort: app.metrics?.port,
    dashboardUrl: app.dashboard?.url,
    close: async () => {
      await app.close();
      auditRefusal.flush();
      store.close();
      model.dispose();
      lock.release();
    },
  };
}
