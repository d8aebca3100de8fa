import { join } from 'node:path';
import type { PlanParts, RoundAggregationFactory, RoundPlan, RoundSummary, SecureAggregationOptions } from '@fedlora/federation';
import type { FederationStore } from '@fedlora/store';
import { resolveAdaptiveClipping } from '@fedlora/privacy';
import { cryptoRandomBytes } from '@fedlora/tensor';
import { loadIdentity } from '@fedlora/transport-grpc';
import type { CoordinatorConfig } from './config.js';
import type { FederationPrivacy } from './federation-privacy.js';
import { calibrateCentralDpFedAvg, checkLedgerAgainstStore, createFederationPrivacy, distributedNoiseStddevPerClient } from './federation-privacy.js';

/** Default deadline of each secure-aggregation stage other than masked-input collection. */
const DEFAULT_STAGE_TIMEOUT_MS = 60_000;

/** The privacy and secure-aggregation side of a configured coordinator. */
export interface ConfiguredProtection {
  aggregation?: RoundAggregationFactory;
  secureAggregation?: SecureAggregationOptions;
  planExtra(): PlanParts;
  /** Appends the round's ledger entry (when DP is on) and returns the line for the store. */
  recordRound(summary: RoundSummary, plan: RoundPlan): Promise<string | undefined>;
  ledgerPath?: string;
  epsilon(): number | undefined;
}

/**
 * Builds DP-FedAvg (central or distributed noise, signed federation ledger in
 * dataDir/federation-ledger.jsonl, written with the coordinator's Ed25519 identity) and SecAgg+
 * (identities are the enrolled clients' Ed25519 keys) from the config.
 */
export async function configureProtection(cfg: CoordinatorConfig, store: FederationStore, dimension: number): Promise<ConfiguredProtection> {
  const p = cfg.privacy;
  const dp = p.mode !== 'none';
  const distributed = p.mode === 'distributed';
  const minSurvivors = cfg.rounds.minClients;
  // What clients' budget guards see in the plan: amplification only for a fraction drawn by Poisson
  // sampling in central mode; distributed mode never claims it (accountedSampling, @fedlora/privacy).
  const k = cfg.rounds.clientsPerRound;
  const sampling = !distributed && cfg.rounds.sampling === 'poisson' && k !== undefined && k < 1 ? k : 1;
  let privacy: FederationPrivacy | undefined;
  if (dp) {
    // The store's copy of every committed ledger line anchors the file: a cut or rewritten ledger is refused here.
    const ahead = checkLedgerAgainstStore(join(cfg.dataDir, 'federation-ledger.jsonl'), store.listLedger().map((e) => e.line));
    const identity = loadIdentity(cfg.identity.secretKeyFile);
    // Budget first: the multiplier that spends privacy.epsilon over rounds.total (config.ts allows it for central noise only).
    const calibration =
      p.epsilon !== undefined
        ? calibrateCentralDpFedAvg({
            targetEpsilon: p.epsilon,
            delta: p.delta!,
            institutions: Math.max(cfg.clients.length, minSurvivors),
            rounds: cfg.rounds.total,
            clipNorm: p.clipNorm!,
            samplingRate: sampling,
            dimension,
            ...(cfg.secagg.enabled ? { secureAggregation: { maxCohort: Math.max(cfg.clients.length, minSurvivors) } } : {}),
          })
        : undefined;
    const noiseMultiplier = calibration?.noiseMultiplier ?? p.noiseMultiplier!;
    const a = p.adaptiveClipping;
    const adaptive = a
      ? resolveAdaptiveClipping({
          noiseMultiplier,
          expectedClients: expectedClientsPerRound(cfg),
          initialClip: a.initialClip ?? p.clipNorm!,
          targetQuantile: a.targetQuantile,
          learningRate: a.learningRate,
          ...(a.bitNoiseStd !== undefined ? { countNoiseStd: a.bitNoiseStd } : {}),
        })
      : undefined;
    privacy = await createFederationPrivacy({
      config: distributed
        ? { mode: 'distributed', clipNorm: p.clipNorm!, noiseMultiplier, samplingRate: sampling, secureAggregation: cfg.secagg.enabled, noise: 'skellam', minSurvivors }
        : { mode: 'central', clipNorm: p.clipNorm!, noiseMultiplier, samplingRate: sampling, secureAggregation: cfg.secagg.enabled },
      delta: p.delta!,
      dimension,
      ledgerPath: join(cfg.dataDir, 'federation-ledger.jsonl'),
      signer: { writer: identity.name || 'coordinator', secretKey: identity.secretKey },
      rng: cryptoRandomBytes,
      ...(adaptive ? { adaptive } : {}),
      ...(calibration ? { calibration } : {}),
    });
    // The ledger verified on open: an entry written just before a crash joins the store's copy.
    for (const line of ahead) store.appendLedger(line);
  }
  const secureAggregation: SecureAggregationOptions | undefined = cfg.secagg.enabled
    ? {
        identityOf: (name) => {
          const c = store.getClient(name);
          return c && c.status !== 'revoked' ? new Uint8Array(Buffer.from(c.publicKey, 'base64')) : undefined;
        },
        clipNorm: p.clipNorm ?? 10,
        noiseStddevPerClient: distributed ? distributedNoiseStddevPerClient(p.noiseMultiplier!, p.clipNorm!, minSurvivors) : 0,
        stageTimeoutMs: DEFAULT_STAGE_TIMEOUT_MS,
        k: cfg.secagg.neighbours,
        t: cfg.secagg.threshold,
        rng: cryptoRandomBytes,
        // Persisted: a coordinator restart must not forget which X25519 keys were already used (issue 16, finding 13).
        usedKeys: storeUsedKeys(store),
        ...(privacy?.perRound ? { perRound: privacy.perRound } : {}),
      }
    : undefined;
  return {
    aggregation: privacy?.aggregation,
    secureAggregation,
    planExtra: () => (privacy ? privacy.planExtra() : {}),
    recordRound: async (summary, plan) => (privacy ? (await privacy.recordRound(summary, plan, new Date(summary.endedAt).toISOString())).line : undefined),
    ledgerPath: privacy?.ledgerPath,
    epsilon: () => privacy?.epsilon(),
  };
}

/** The used-X25519-key registry of SecAgg+ kept in the coordinator's store (survives restarts). */
export function storeUsedKeys(store: Pick<FederationStore, 'isSecAggKeyUsed' | 'recordSecAggKey'>): NonNullable<SecureAggregationOptions['usedKeys']> {
  return { has: (k) => store.isSecAggKeyUsed(k), add: (k) => store.recordSecAggKey(k) };
}

/**
 * m of adaptive clipping: the expected number of updates a round sums. A count clientsPerRound is
 * it; a fraction of the enrolled clients otherwise; with neither, every enrolled client (at least
 * minClients).
 */
function expectedClientsPerRound(cfg: CoordinatorConfig): number {
  const k = cfg.rounds.clientsPerRound;
  const enrolled = Math.max(cfg.clients.length, cfg.rounds.minClients);
  if (k === undefined) return enrolled;
  return k >= 1 && Number.isInteger(k) ? k : Math.max(cfg.rounds.minClients, Math.ceil(k * enrolled));
}
