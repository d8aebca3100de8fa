import { describe, expect, it } from 'vitest';
import type { ClientMsg } from '@fedlora/secagg';
import { encodeMessage, generateIdentity, parseMessage } from '@fedlora/secagg';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { CoordinatorConnection } from './client-runner.js';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import type { SecAggExchange } from './secure-client.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

/**
 * #16 finding 6, the rerun: a member caught misbehaving (here: a partial masked upload, then
 * silence) is named in the attempt's summary and left out of the round's later attempts. Attempt 1
 * aborts because an honest member also vanished (4 of 5 needed); attempt 2 runs without the
 * culprit and completes. Before the fix the culprit aborted every attempt and the run failed.
 */
const D = 70_000; // padded to 131,072 words: two masked-input chunks
const NAMES = ['c1', 'c2', 'c3', 'c4', 'c5'];
const rng = seededRandomBytes('misbehaviour-rerun');
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

/** A connection whose client stops answering after the first chunk of its masked input. */
function partialUploader(conn: CoordinatorConnection, signal: AbortSignal): CoordinatorConnection {
  let silent = false;
  // Silent until the test ends.
  const never = () => new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }));
  const secAggExchange: SecAggExchange = async (round, nonce, stage, payload, report) => {
    if (silent) return never();
    if (payload.length > 0) {
      const m = parseMessage(payload) as ClientMsg;
      if (m.type === 'chunk' && m.offset > 0) {
        silent = true;
        return never();
      }
      payload = encodeMessage(m);
    }
    return conn.secAggExchange(round, nonce, stage, payload, report);
  };
  return { ...conn, heartbeat: (r) => (silent ? never() : conn.heartbeat(r)), secAggExchange };
}

describe('a misbehaving member is left out of reruns (#16 finding 6)', () => {
  it('attempt 2 runs without the member that stopped mid-upload in attempt 1', async () => {
    const adapter: NamedTensors = new Map([['w', { shape: [D], data: new Float32Array(D) }]]);
    const coordinator = testCoordinator({
      federationId: 'rerun',
      minClients: 4,
      minAvailableClients: 5,
      maxAttemptsPerRound: 3,
      roundDeadlineMs: 120_000,
      learningRate: 0,
      initialAdapter: adapter,
      rng,
      secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 100, stageTimeoutMs: 20_000, livenessMs: 10_000, rng },
    });
    const run = coordinator.run();
    const stop = new AbortController();
    const clients = NAMES.map((name, i) => {
      const base = inProcessConnection(coordinator);
      return runClient({
        name,
        connection: name === 'c2' ? partialUploader(base, stop.signal) : base,
        trainer: constantTrainer(0.01 * (i + 1), 1),
        pollMs: 50,
        heartbeatMs: 100,
        signal: stop.signal,
        // c5 (honest) vanishes at collection in attempt 1 only, so attempt 1 falls below minClients.
        secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, dropAtFor: (plan) => (name === 'c5' && plan.attempt === 1 ? 'collect' : undefined) },
      }).catch(() => undefined);
    });
    const history = await run;
    stop.abort();
    await Promise.allSettled(clients);
    expect(history.map((h) => [h.attempt, h.status])).toEqual([
      [1, 'aborted'],
      [2, 'completed'],
    ]);
    expect(history[0]!.misbehaved).toEqual([{ client: 'c2', reason: expect.stringMatching(/stopped mid-upload/) }]);
    expect(history[0]!.reason).toMatch(/3 clients uploaded inputs \(need >= 4\)/);
    expect(history[1]!.cohort).toBe(4);
    expect(history[1]!.participantNames).toEqual(['c1', 'c3', 'c4', 'c5']);
    const mean = (0.01 + 0.03 + 0.04 + 0.05) / 4;
    expect(Math.abs(coordinator.adapter.get('w')!.data[D - 1]! - mean)).toBeLessThan(1e-3);
  }, 120_000);
});
