import { describe, expect, it } from 'vitest';
import type { Stage } from '@fedlora/secagg';
import { generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

const rng = seededRandomBytes('secure-round-test');
const NAMES = Array.from({ length: 8 }, (_, i) => `c${i + 1}`);
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

function federation(dropAt: Record<string, Stage>) {
  const coordinator = testCoordinator({
    federationId: 'secure',
    minClients: 3,
    maxAttemptsPerRound: 1,
    minAvailableClients: NAMES.length,
    learningRate: 0,
    rng,
    // Full SecAgg (k = n - 1) with threshold 4 (> k/2): every survivor keeps >= 4 share holders.
    // A client that vanished at collect is noticed after 3 s of silence (these trainers finish at once).
    secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, stageTimeoutMs: 3000, livenessMs: 3000, rng, k: 7, t: 4 },
  });
  const run = coordinator.run();
  const stop = new AbortController();
  const clients = NAMES.map((name, i) =>
    runClient({
      name,
      connection: inProcessConnection(coordinator),
      trainer: constantTrainer(0.01 * (i + 1), 1),
      pollMs: 100,
      heartbeatMs: 50,
      signal: stop.signal,
      secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, dropAtFor: () => dropAt[name] },
    }),
  );
  return { coordinator, run, clients, stop };
}

describe('secure aggregation inside a round (in-process)', () => {
  for (const drops of [
    { c1: 'advertise', c2: 'share', c3: 'collect' },
    { c1: 'consistency', c2: 'unmask' },
  ] as Array<Record<string, Stage>>) {
    it(`gives the plain mean of the survivors when clients drop at ${Object.values(drops).join(', ')}`, async () => {
      const { coordinator, run, clients } = federation(drops);
      const [h] = await run;
      await Promise.all(clients);
      expect(h!.status).toBe('completed');
      const survivors = h!.participantNames;
      // Clients that dropped before sending their masked input are not in the sum; later ones are (their masks are recovered).
      const expected = NAMES.filter((n) => !['advertise', 'share', 'collect'].includes(drops[n] ?? ''));
      expect(survivors).toEqual(expected);
      const mean = survivors.reduce((a, n) => a + 0.01 * Number(n.slice(1)), 0) / survivors.length;
      const a = coordinator.adapter.get('lora_A')!.data;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - (i + mean))).toBeLessThan(1e-3);
    });
  }

  it('aborts the round cleanly, releasing nothing, when too many clients drop', async () => {
    const drop: Record<string, Stage> = { c1: 'collect', c2: 'collect', c3: 'collect', c4: 'collect', c5: 'collect', c6: 'collect' };
    const { coordinator, run, clients, stop } = federation(drop);
    await expect(run).rejects.toThrow(/aborted 1 times/);
    stop.abort();
    coordinator.stop();
    await Promise.allSettled(clients);
    expect(coordinator.rounds.every((r) => r.status === 'aborted')).toBe(true);
    expect(coordinator.rounds[0]!.reason).toMatch(/secure aggregation|reported/);
    expect(Array.from(coordinator.adapter.get('lora_A')!.data)).toEqual([0, 1, 2, 3, 4, 5]);
  }, 60_000);
});
