import { describe, expect, it } from 'vitest';
import type { Stage } from '@fedlora/secagg';
import { chooseSecAggParams, generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { SecureRound, thresholdForSurvivors } from './secure-round.js';
import { constantTrainer, testCoordinator, tinyAdapter } from './test-helpers.js';

const rng = seededRandomBytes('membership-and-floor');
const NAMES = Array.from({ length: 7 }, (_, i) => `c${i + 1}`);
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));
const layout = [...tinyAdapter()].map(([name, t]) => ({ name, shape: [...t.shape] }));

function federation(o: { names: string[]; rounds: number; minClients: number; maxAttempts: number; revoked?: Set<string>; dropAt?: Record<string, Stage>; k?: number; t?: number; onRoundEnd?: (round: number) => void }) {
  const revoked = o.revoked ?? new Set<string>();
  const coordinator = testCoordinator({
    federationId: 'membership',
    rounds: o.rounds,
    minClients: o.minClients,
    maxAttemptsPerRound: o.maxAttempts,
    minAvailableClients: o.minClients,
    learningRate: 0,
    rng,
    // As apps/coordinator wires it: membership and identity keys are read from the store at each call.
    isMember: (n) => !revoked.has(n),
    secureAggregation: { identityOf: (n) => (revoked.has(n) ? undefined : identities.get(n)?.publicKey), clipNorm: 10, stageTimeoutMs: 3000, livenessMs: 3000, rng, k: o.k, t: o.t },
    onRoundEnd: (s) => {
      if (s.status === 'completed') o.onRoundEnd?.(s.round);
    },
  });
  const run = coordinator.run();
  const stop = new AbortController();
  const clients = o.names.map((name, i) =>
    runClient({
      name,
      connection: inProcessConnection(coordinator),
      trainer: constantTrainer(0.01 * (i + 1), 1),
      pollMs: 50,
      heartbeatMs: 50,
      signal: stop.signal,
      secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, dropAtFor: () => o.dropAt?.[name] },
    }),
  );
  // Settle every client from the start: a revoked client's run rejects while the coordinator still runs.
  const settled = Promise.allSettled(clients);
  return { coordinator, run, clients, settled, stop };
}

describe('#16 finding 7: a revoked institution leaves the live set at once', () => {
  it('the next secure round runs without it and the run completes', async () => {
    const revoked = new Set<string>();
    const names = NAMES.slice(0, 4);
    // Revoked right after round 1 commits, while its client is still polling (live for another 60 s by heartbeat alone).
    const f = federation({ names, rounds: 2, minClients: 3, maxAttempts: 3, revoked, onRoundEnd: (r) => r === 1 && revoked.add('c4') });
    const history = await f.run;
    f.stop.abort();
    const outcomes = await f.settled;
    // The revoked institution is told so and stops; the others finish.
    expect(outcomes[3]).toMatchObject({ status: 'rejected', reason: { message: expect.stringMatching(/revoked/) } });
    expect(outcomes.slice(0, 3).map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(history.map((h) => [h.round, h.attempt, h.status])).toEqual([
      [1, 1, 'completed'],
      [2, 1, 'completed'],
    ]);
    expect(history[1]!.participantNames).toEqual(['c1', 'c2', 'c3']);
    expect(f.coordinator.status().connectedClients).toBe(3);
  }, 60_000);
});

describe('#16 finding 8: no sum of fewer than minClients inputs is unmasked', () => {
  it('the secure round aborts at collection, before unmasking, when survivors fall below minClients', async () => {
    // n = 7 with full SecAgg and t = 4: five survivors could be unmasked; minClients is 6.
    const f = federation({ names: NAMES, rounds: 1, minClients: 6, maxAttempts: 1, k: 6, t: 4, dropAt: { c6: 'collect', c7: 'collect' } });
    await expect(f.run).rejects.toThrow(/aborted 1 times/);
    f.stop.abort();
    f.coordinator.stop();
    await f.settled;
    // Before the fix the sum of five was unmasked and only then discarded ("5 of 7 clients reported, minClients is 6").
    expect(f.coordinator.rounds[0]!.reason).toMatch(/secure aggregation aborted \(threshold\): .*5 clients uploaded inputs \(need >= 6\)/);
  }, 60_000);

  it('raises the threshold to minSurvivors - 1 so that no smaller sum can be reconstructed', () => {
    expect(chooseSecAggParams({ n: 10, dropoutFraction: 0.1 }).t).toBeLessThan(7);
    const round = new SecureRound(1, NAMES.concat(['c8', 'c9', 'c10']), layout, { identityOf: () => identities.get('c1')!.publicKey, clipNorm: 1, stageTimeoutMs: 1000, rng, minSurvivors: 8 }, 10_000, 0);
    expect(round.plan.t).toBe(7);
    expect(thresholdForSurvivors(3, 2, 2, 3)).toEqual({ k: 2, t: 2 });
    expect(thresholdForSurvivors(20, 6, 4, 9)).toEqual({ k: 8, t: 8 });
    expect(() => thresholdForSurvivors(3, 2, 2, 4)).toThrow(/cannot reach 4 survivors/);
  });
});
