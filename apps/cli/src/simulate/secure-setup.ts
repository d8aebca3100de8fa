import type { LocalTrainer, RoundPlan, SecureAggregationOptions, SecureClientOptions } from '@fedlora/federation';
import { flattenInPlanOrder, noiseShareFor } from '@fedlora/federation';
import type { Stage } from '@fedlora/secagg';
import { STAGES, chooseSecAggParams } from '@fedlora/secagg';
import type { RandomBytes } from '@fedlora/tensor';
import { cryptoRandomBytes, seededRandomBytes, uniform01, uniformInt } from '@fedlora/tensor';
import { PopulationKeys } from './key-store.js';

/** Secure-aggregation settings of a simulation. */
export interface SimulationSecAgg {
  /** Probability that a client vanishes during a round, at a stage drawn uniformly. */
  dropout: number;
  clipNorm: number;
  stageTimeoutMs: number;
  /** Deadline of the first stage, which also covers materialising the cohort (default stageTimeoutMs). */
  advertiseTimeoutMs?: number;
  /** A client owed its masked input counts as vanished after this long without a heartbeat (default max(30 s, 3 stage timeouts)). */
  livenessMs?: number;
  /** Fault injection for tests: these clients vanish at the given stage in every round. */
  forcedDrops?: Record<string, Stage>;
  /** Overrides of the SecAgg+ neighbourhood size and threshold. */
  k?: number;
  t?: number;
}

/** The dropout fraction the coordinator sizes SecAgg+ for: 1.5x the simulated dropout, within [0.1, 0.5]. */
export function simulationDropoutFraction(dropout: number): number {
  return Math.min(0.5, Math.max(0.1, dropout * 1.5));
}

/**
 * The most survivors a simulation may require of a secure round without changing its graph: a
 * secure sum already holds at least t + 1 inputs, and a larger minimum raises t, and k with it,
 * towards the cohort (thresholdForSurvivors). For a sparse SecAgg+ graph (Bell et al. 2020, k of
 * O(log n)) that is t + 1 of chooseSecAggParams; a complete graph (small cohorts) sets no cap.
 */
export function secureMinClientsCap(cohort: number, dropout: number): number {
  if (cohort < 3) return cohort;
  const p = chooseSecAggParams({ n: cohort, dropoutFraction: simulationDropoutFraction(dropout) });
  return p.full ? cohort : p.t + 1;
}

/** One client's update as trained, with the L2 clip the encoding applies to it. */
type SentUpdate = { flat: Float32Array; clip: number; norm: number };

/** acc += the clipped update (scaled by clip / norm when norm > clip), in float64. */
function addClipped(acc: Float64Array, u: SentUpdate): void {
  const { flat, clip, norm } = u;
  if (norm > clip) for (let i = 0; i < acc.length; i++) acc[i] += (flat[i]! * clip) / norm;
  else for (let i = 0; i < acc.length; i++) acc[i] += flat[i]!;
}

/**
 * Identities and per-client options for a simulated SecAgg+ federation, plus what only a
 * simulator can know: every client's clipped update, to measure how far the securely
 * aggregated average is from the plain one.
 */
export function createSecureSimulation(names: string[], o: SimulationSecAgg & { seed: string; keyDir: string; cohort?: number; noiseStddevPerClient?: number; perRound?: SecureAggregationOptions['perRound'] }) {
  // Identity seeds on disk (key-store.ts), public keys in memory: the roster and every institution's members list need them all.
  const keys = PopulationKeys.create(o.keyDir, 'secagg', names.length, cryptoRandomBytes);
  const members = new Map(names.map((n, i) => [n, keys.publicKey(i)]));
  const dropRng: RandomBytes = seededRandomBytes(`dropout:${o.seed}`);
  /** Per round, each client's update as sent (float32, as trained) and its clip factor: half the memory of float64 copies (a cohort of 1,000 at d = 24,576 kept 197 MB). */
  const sent = new Map<number, Map<string, SentUpdate>>();

  const coordinator: SecureAggregationOptions = {
    identityOf: (n) => members.get(n),
    clipNorm: o.clipNorm,
    noiseStddevPerClient: o.noiseStddevPerClient ?? 0,
    dropoutFraction: simulationDropoutFraction(o.dropout),
    stageTimeoutMs: o.stageTimeoutMs,
    ...(o.advertiseTimeoutMs !== undefined ? { advertiseTimeoutMs: o.advertiseTimeoutMs } : {}),
    ...(o.livenessMs !== undefined ? { livenessMs: o.livenessMs } : {}),
    rng: cryptoRandomBytes,
    k: o.k,
    t: o.t,
    ...(o.perRound ? { perRound: o.perRound } : {}),
  };

  /** Institution `index` (named `name`)'s options: its identity key is read from disk when it is materialised. */
  const client = (name: string, index: number): SecureClientOptions => ({
    identitySecretKey: keys.secretKey(index),
    // The simulator plays the federation authority: every simulated institution accepts exactly the simulated members.
    members,
    rng: cryptoRandomBytes,
    noiseFor: (plan: RoundPlan) => noiseShareFor(plan, cryptoRandomBytes),
    // One process runs the whole cohort: each institution polls about once per cohort-size milliseconds (100 ms up to a cohort of 100).
    pollMs: Math.max(100, o.cohort ?? 0),
    dropAtFor: (): Stage | undefined => o.forcedDrops?.[name] ?? (o.dropout > 0 && uniform01(dropRng) < o.dropout ? STAGES[uniformInt(dropRng, STAGES.length)] : undefined),
  });

  /** Records the clipped update a client sends (what the secure sum should average). */
  const recordUpdates = (name: string, inner: LocalTrainer): LocalTrainer => ({
    get numExamples() {
      return inner.numExamples;
    },
    accept: inner.accept?.bind(inner),
    async train(plan, global, progress) {
      const r = await inner.train(plan, global, progress);
      const flat = flattenInPlanOrder(plan, r.delta);
      const clip = plan.secagg?.encoding.clip ?? o.clipNorm; // the round's (adaptive clipping changes it)
      let norm = 0;
      for (const v of flat) norm += v * v;
      norm = Math.sqrt(norm);
      const byClient = sent.get(plan.round) ?? new Map<string, SentUpdate>();
      byClient.set(name, { flat, clip, norm });
      sent.set(plan.round, byClient);
      return r;
    },
  });

  /**
   * Compares the securely aggregated average (new - old adapter under FedAvg with server
   * learning rate 1) with the plain average of the survivors' clipped updates.
   */
  const measure = (round: number, survivors: string[], secureAverage: Float64Array): { aggregateMaxAbsError: number; noiseStd: number } => {
    const updates = survivors.map((n) => sent.get(round)?.get(n)).filter((u): u is SentUpdate => !!u);
    if (updates.length !== survivors.length) return { aggregateMaxAbsError: Number.NaN, noiseStd: Number.NaN };
    // Client by client into one float64 sum: per coordinate the same additions in the same order as a
    // coordinate-major loop, without walking 1,000 arrays for each of d coordinates.
    const plain = new Float64Array(secureAverage.length);
    for (const u of updates) addClipped(plain, u);
    let maxErr = 0;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < secureAverage.length; i++) {
      const e = secureAverage[i]! - plain[i]! / updates.length;
      maxErr = Math.max(maxErr, Math.abs(e));
      s += e;
      s2 += e * e;
    }
    const n = secureAverage.length;
    sent.delete(round);
    return { aggregateMaxAbsError: maxErr, noiseStd: Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)) };
  };

  return { coordinator, client, recordUpdates, measure, close: () => keys.close() };
}
