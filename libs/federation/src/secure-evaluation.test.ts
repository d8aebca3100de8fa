import { describe, expect, it } from 'vitest';
import type { Stage } from '@fedlora/secagg';
import { generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { runClient, type CoordinatorConnection, type LocalTrainer } from './client-runner.js';
import { FederationCoordinator } from './coordinator.js';
import { inProcessConnection } from './in-process-connection.js';
import { combineEvaluations } from './round-evaluation.js';
import { SECURE_EVAL_WORD_COUNT, decodeEvalSums, encodeEvalWords, secureEvalCap, secureEvalScale } from './secure-evaluation.js';
import { createStrategy } from './strategy.js';
import { constantTrainer, tinyAdapter } from './test-helpers.js';
import type { ClientReport } from './types.js';

/** Word-wise sum modulo 2^32, as the unmasked SecAgg+ sum is. */
function ringSum(vectors: Uint32Array[]): Uint32Array {
  const out = new Uint32Array(SECURE_EVAL_WORD_COUNT);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i] = (out[i]! + v[i]!) >>> 0;
  return out;
}

const METRICS: Array<Record<string, number>> = [
  { evalCount: 10, evalAcc: 0.5, evalAccNorm: 0.4, evalLoss: 2.123456, evalTokens: 100, generalLoss: 3.25 },
  { evalCount: 30, evalAcc: 0.9, evalAccNorm: 0.8, evalLoss: 1.000001, evalTokens: 300, generalLoss: 4.5 },
  { evalCount: 7, evalAcc: 3 / 7 },
];

describe('secure evaluation words', () => {
  it('sum to what combineEvaluations gives from the plain reports (counts exact, losses to 1/evalScale nat)', () => {
    const n = 4;
    const scale = secureEvalScale(n);
    const sums = ringSum([...METRICS.map((m) => encodeEvalWords(m, n, scale)), encodeEvalWords({ tokens: 5 }, n, scale)]);
    const got = decodeEvalSums(sums, scale)!;
    const want = combineEvaluations(METRICS)!;
    expect(got).toMatchObject({ clients: 3, count: 47, acc: want.acc, accNorm: want.accNorm, secure: true });
    expect(Math.abs(got.loss! - want.loss!)).toBeLessThan(1 / scale);
    expect(Math.abs(got.generalLoss! - want.generalLoss!)).toBeLessThan(1 / scale);
  });

  it('sends zeros (no evaluation) for an institution that did not evaluate or whose values exceed the per-word cap', () => {
    const scale = secureEvalScale(4);
    expect(Array.from(encodeEvalWords(undefined, 4, scale))).toEqual(new Array(SECURE_EVAL_WORD_COUNT).fill(0));
    expect(Array.from(encodeEvalWords({ evalCount: 0, evalAcc: 1 }, 4, scale))).toEqual(new Array(SECURE_EVAL_WORD_COUNT).fill(0));
    expect(Array.from(encodeEvalWords({ evalCount: secureEvalCap(4) + 1, evalAcc: 1 }, 4, scale))).toEqual(new Array(SECURE_EVAL_WORD_COUNT).fill(0));
    expect(Array.from(encodeEvalWords({ evalCount: 1, evalLoss: 10, evalTokens: 2e6 }, 4, scale))).toEqual(new Array(SECURE_EVAL_WORD_COUNT).fill(0));
    expect(decodeEvalSums(new Uint32Array(SECURE_EVAL_WORD_COUNT), scale)).toBeUndefined();
  });

  it('sizes the scale and cap so that n institutions at the cap cannot wrap the 2^32 ring', () => {
    expect(secureEvalScale(4)).toBe(1073);
    expect(secureEvalScale(1000)).toBe(4);
    expect(secureEvalScale(100_000)).toBe(1);
    for (const n of [1, 4, 1000, 100_000]) expect(n * secureEvalCap(n)).toBeLessThanOrEqual(2 ** 32 - 1);
    expect(() => secureEvalCap(0)).toThrow(/cohort must be a positive integer/);
    expect(() => encodeEvalWords({}, 4, 0)).toThrow(/evalScale must be a positive integer/);
  });
});

describe('federated evaluation in a secure round (in-process coordinator, real SecAgg+)', () => {
  it('the round summary carries the survivors\' combined metrics, summed inside the masked inputs, never sent in the clear', async () => {
    const rng = seededRandomBytes('secure-evaluation-test');
    const names = ['c1', 'c2', 'c3', 'c4', 'c5'];
    const identities = new Map(names.map((n) => [n, generateIdentity(rng)]));
    const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));
    // c4 evaluates nothing; c5 vanishes before its masked input, so its metrics are in no sum.
    const metricsOf: Record<string, Record<string, number> | undefined> = { c1: METRICS[0], c2: METRICS[1], c3: METRICS[2], c4: undefined, c5: { evalCount: 1000, evalAcc: 0 } };
    const dropAt: Record<string, Stage> = { c5: 'collect' };
    const coordinator = new FederationCoordinator({
      federationId: 'secure-eval',
      rounds: 1,
      minClients: 3,
      maxAttemptsPerRound: 1,
      minAvailableClients: names.length,
      roundDeadlineMs: 20_000,
      localSteps: 1,
      learningRate: 0,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: tinyAdapter(1),
      rng,
      secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, stageTimeoutMs: 3000, livenessMs: 3000, rng, k: 4, t: 3 },
    });
    const reports: ClientReport[] = [];
    const connection = (): CoordinatorConnection => {
      const c = inProcessConnection(coordinator);
      return {
        ...c,
        secAggExchange: (round, nonce, stage, payload, report) => {
          if (report) reports.push(report);
          return c.secAggExchange(round, nonce, stage, payload, report);
        },
      };
    };
    const trainer = (name: string): LocalTrainer => {
      const inner = constantTrainer(0.01, 2);
      return { numExamples: 2, train: async (p, g) => ({ ...(await inner.train(p, g)), ...(metricsOf[name] ? { metrics: metricsOf[name] } : {}) }) };
    };
    const run = coordinator.run();
    const clients = names.map((name) =>
      runClient({ name, connection: connection(), trainer: trainer(name), pollMs: 100, heartbeatMs: 50, secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, dropAtFor: () => dropAt[name] } }),
    );
    const [h] = await run;
    await Promise.allSettled(clients);
    expect(h!.status).toBe('completed');
    expect(h!.participantNames).toEqual(['c1', 'c2', 'c3', 'c4']);
    const want = combineEvaluations(METRICS)!;
    const scale = secureEvalScale(names.length);
    expect(h!.evaluation).toMatchObject({ clients: 3, count: 47, acc: want.acc, accNorm: want.accNorm, secure: true });
    expect(Math.abs(h!.evaluation!.loss! - want.loss!)).toBeLessThan(1 / scale);
    expect(Math.abs(h!.evaluation!.generalLoss! - want.generalLoss!)).toBeLessThan(1 / scale);
    // What the coordinator received in the clear: the training reports only.
    expect(reports.length).toBe(4);
    for (const r of reports) expect(Object.keys(r).sort()).toEqual(['numExamples', 'trainLoss']);
  }, 60_000);
});
