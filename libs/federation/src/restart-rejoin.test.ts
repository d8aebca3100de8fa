/**
 * A coordinator restart seen from both sides: a client whose session the new coordinator does not
 * know registers again at once (issue 11: a backoff there kept an institution out of every later
 * round), the first round after a restart waits for the last committed round's clients, and a
 * finished run waits for each of them to learn that it finished.
 */
import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.js';
import type { CoordinatorConnection } from './client-runner.js';
import { runClient } from './client-runner.js';
import type { CoordinatorOptions } from './coordinator.js';
import { FederationCoordinator } from './coordinator.js';
import { FederationError } from './errors.js';
import { inProcessConnection } from './in-process-connection.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

function coordinator(over: Partial<CoordinatorOptions> = {}): FederationCoordinator {
  return testCoordinator({
    minClients: 1,
    roundDeadlineMs: 30_000,
    ...over,
  });
}

/**
 * A connection to whichever coordinator is current, keeping its session token across a switch as
 * the gRPC connection does; while `down`, every call fails as an unreachable server does.
 */
function switchableConnection(first: FederationCoordinator) {
  const link = { target: first, down: false, calls: [] as string[] };
  let id = '';
  let token = '';
  const call = async <T>(name: string, f: () => T | Promise<T>): Promise<T> => {
    link.calls.push(name);
    if (link.down) throw new FederationError('unavailable', 'connect ECONNREFUSED 127.0.0.1');
    return f();
  };
  const conn: CoordinatorConnection = {
    register: (n, e) =>
      call('register', () => {
        const r = link.target.register(n, e);
        id = r.clientId;
        token = r.sessionToken;
        return { clientId: id };
      }),
    getTask: (w) => call('getTask', () => link.target.getTask(id, token, w)),
    downloadAdapter: (r) => call('downloadAdapter', () => link.target.getAdapter(id, token, r).adapter),
    uploadUpdate: (u) => call('uploadUpdate', () => link.target.submitUpdate(id, token, u)),
    decline: (r, why) => call('decline', () => link.target.decline(id, token, r, why)),
    heartbeat: (r) => call('heartbeat', () => link.target.heartbeat(id, token, r)),
    secAggExchange: () => Promise.reject(new Error('not used')),
    close: () => undefined,
  };
  return { conn, link };
}

describe('a coordinator restart', () => {
  it('makes a client whose session is unknown register again at once, without the outage backoff', async () => {
    const before = coordinator(); // registers the client, never opens a round
    const after = coordinator(); // the restarted coordinator: knows no session
    const { conn, link } = switchableConnection(before);
    const backoffs: number[] = [];
    const clock: Clock = {
      now: () => Date.now(),
      // Virtual time: sleeps return at once. The sixth backoff of the outage ends it, with `after` answering.
      sleep: async (ms) => {
        if (ms >= 500) backoffs.push(ms);
        if (link.down && backoffs.length === 6) {
          link.target = after;
          link.down = false;
        }
        await new Promise((r) => setImmediate(r));
      },
    };
    const getTask = conn.getTask;
    conn.getTask = (w) => {
      if (link.target === before && link.calls.filter((c) => c === 'getTask').length === 1) link.down = true; // the kill
      return getTask(w);
    };
    const run = after.run();
    const result = await runClient({ name: 'c0', connection: conn, trainer: constantTrainer(1, 1), pollMs: 20, clock, backoffMs: { initial: 500, max: 30_000 } });
    await run;

    expect(result.roundsTrained).toEqual([1]);
    // The outage's doubling backoff, and none after the refused session.
    expect(backoffs).toEqual([500, 1000, 2000, 4000, 8000, 16_000]);
    const refused = link.calls.lastIndexOf('register') - 1;
    expect(link.calls[refused]).toBe('getTask'); // answered UNAUTHENTICATED by `after`
    expect(link.calls.filter((c) => c === 'register')).toHaveLength(2);
    expect(after.rounds.map((r) => r.participantNames)).toEqual([['c0']]);
  });

  it('holds the first round after a restart until every client of the last committed round is back', async () => {
    const c = coordinator({ rounds: 1, minClients: 1, rejoin: { clients: ['a', 'b'], graceMs: 600_000 } });
    const run = c.run();
    const a = runClient({ name: 'a', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 20 });
    // `a` alone satisfies minClients; the round still waits for `b` (the grace is far longer than this test).
    await new Promise((r) => setTimeout(r, 300));
    expect(c.status().state).toBe('waiting-for-clients');
    expect(c.rounds).toHaveLength(0);
    const b = runClient({ name: 'b', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 20 });
    const [history] = await Promise.all([run, a, b]);
    expect(history.map((h) => h.participantNames)).toEqual([['a', 'b']]);
  });

  it('starts without a client that does not come back within the grace period', async () => {
    const c = coordinator({ rounds: 1, minClients: 1, rejoin: { clients: ['a', 'gone'], graceMs: 200 } });
    const run = c.run();
    await runClient({ name: 'a', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 20 });
    expect((await run).map((h) => h.participantNames)).toEqual([['a']]);
  });

  it('keeps telling a client of the run that it finished, even one that comes back after the last round', async () => {
    const c = coordinator({ rounds: 1, minClients: 1, rejoin: { clients: ['a', 'late'], graceMs: 100 } });
    const run = c.run();
    await runClient({ name: 'a', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 20 });
    await run;
    let drained = false;
    const drain = c.drain(600_000).then(() => (drained = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(drained).toBe(false); // `late` has not heard yet
    const late = await runClient({ name: 'late', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 20 });
    expect(late.roundsTrained).toEqual([]);
    await drain;
    expect(drained).toBe(true);
  });
});
