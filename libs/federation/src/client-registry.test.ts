import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import type { Clock } from './clock.js';
import { silentLogger } from './clock.js';
import { ClientRegistry } from './client-registry.js';
import { runClient } from './client-runner.js';
import { FederationError } from './errors.js';
import { inProcessConnection } from './in-process-connection.js';
import { MAX_CHECK_IN_BATCH } from './coordinator.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

/** A clock the test moves by hand. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 1_000_000;
  return { now: () => now, sleep: async () => {}, advance: (ms) => void (now += ms) };
}

describe('ClientRegistry (the coordinator\'s live set)', () => {
  it('counts as live only members heard from within the liveness window, and lists them sorted', () => {
    const clock = manualClock();
    const revoked = new Set<string>();
    const r = new ClientRegistry({ livenessMs: 1000, isMember: (n) => !revoked.has(n), identityOf: (n) => (n === 'no-key' ? undefined : n), clock, logger: silentLogger, rng: seededRandomBytes('registry') });
    for (const n of ['c', 'a', 'b', 'no-key']) r.register(n, 1);
    expect(r.live()).toEqual(['a', 'b', 'c']);
    expect(r.liveCount()).toBe(3);
    expect(r.liveCount(new Map([['b', 'misbehaved']]))).toBe(2);
    revoked.add('c');
    expect(r.liveCount()).toBe(2);
    clock.advance(1001);
    const { sessionToken } = r.register('a', 1);
    r.authenticate('a', sessionToken);
    expect(r.live()).toEqual(['a']);
    expect(r.isLiveClient('b')).toBe(false);
  });

  it('gives a new session on re-registration and refuses the old one', () => {
    const r = new ClientRegistry({ clock: manualClock(), logger: silentLogger, rng: seededRandomBytes('registry-2') });
    const first = r.register('a', 3);
    const second = r.register('a', 5);
    expect(second.rejoined).toBe(true);
    expect(() => r.authenticate('a', first.sessionToken)).toThrow(FederationError);
    expect(r.authenticate('a', second.sessionToken).numExamples).toBe(5);
    expect(r.numExamples('a')).toBe(5);
    expect(() => r.register('bad name', 1)).toThrow(/client name must be/);
  });
});

describe('batched check-ins (FederationCoordinator.checkIn)', () => {
  it('keeps a session live like its own poll does, refuses a wrong token per session, and bounds the batch', () => {
    const clock = manualClock();
    const c = testCoordinator({ livenessMs: 1000, clock });
    const a = c.register('a', 1);
    c.register('b', 1);
    clock.advance(900);
    const answers = c.checkIn([{ clientId: 'a', token: a.sessionToken }, { clientId: 'b', token: 'forged' }]);
    expect(answers).toEqual([{ task: { kind: 'wait', retryAfterMs: 500 } }, { refused: 'unauthenticated', reason: expect.stringMatching(/register again/) }]);
    clock.advance(900); // a checked in 900 ms ago, b 1,800 ms ago
    expect(c.status().connectedClients).toBe(1);
    expect(() => c.checkIn(Array.from({ length: MAX_CHECK_IN_BATCH + 1 }, () => ({ clientId: 'a', token: a.sessionToken })))).toThrow(/at most 1024 sessions/);
  });
});

describe('a client materialised for one round at a time (runClient untilIdle)', () => {
  it('trains each round it is handed, returns when idle, and the federation completes every round', async () => {
    const c = testCoordinator({ rounds: 2, minClients: 2, minAvailableClients: 2 });
    const run = c.run();
    const connections = [inProcessConnection(c), inProcessConnection(c)];
    const trained: number[][] = [[], []];
    let runs = 0;
    while (c.status().state !== 'finished') {
      await Promise.all(
        connections.map(async (connection, i) => {
          const r = await runClient({ name: `c${i}`, connection, trainer: constantTrainer(1, 1), pollMs: 0, untilIdle: true });
          trained[i]!.push(...r.roundsTrained);
          runs++;
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const history = await run;
    expect(history.map((h) => h.status)).toEqual(['completed', 'completed']);
    expect(trained).toEqual([
      [1, 2],
      [1, 2],
    ]);
    // Each call returned (the client went idle) instead of polling until the run finished.
    expect(runs).toBeGreaterThan(2);
  });
});
