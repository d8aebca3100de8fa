import { describe, expect, it } from 'vitest';
import { STAGES, generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { runClient, type CoordinatorConnection } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

const rng = seededRandomBytes('secure-long-poll-test');
const NAMES = ['c1', 'c2', 'c3', 'c4', 'c5'];
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

/** Runs one secure round; returns the adapter and, per client, how many empty-payload polls it made. */
async function secureRound(longPollMs: number) {
  const coordinator = testCoordinator({
    federationId: 'long-poll',
    minClients: 5,
    maxAttemptsPerRound: 1,
    minAvailableClients: NAMES.length,
    learningRate: 0,
    rng,
    secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, stageTimeoutMs: 5000, rng, k: 4, t: 3 },
  });
  const run = coordinator.run();
  const polls = new Map(NAMES.map((n) => [n, 0]));
  const counted = (name: string): CoordinatorConnection => {
    const c = inProcessConnection(coordinator);
    return {
      ...c,
      secAggExchange: (round, nonce, stage, payload, report, waitMs) => {
        if (payload.length === 0) polls.set(name, polls.get(name)! + 1);
        return c.secAggExchange(round, nonce, stage, payload, report, waitMs);
      },
    };
  };
  const clients = NAMES.map((name, i) =>
    runClient({
      name,
      connection: counted(name),
      trainer: constantTrainer(0.01 * (i + 1), 1, i === 0 ? 1500 : 0), // c1 trains slowly: the others wait in collect
      pollMs: 20,
      heartbeatMs: 50,
      secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng, longPollMs },
    }),
  );
  const [h] = await run;
  await Promise.all(clients);
  return { status: h!.status, participants: h!.participantNames, adapter: [...coordinator.adapter.get('lora_A')!.data], polls };
}

describe('secure-aggregation long polls', () => {
  it('hold each poll until the stage changes: a bounded number of polls per stage, the same mean as short polls', async () => {
    const held = await secureRound(20_000);
    const short = await secureRound(0);
    expect(held.status).toBe('completed');
    expect(short.status).toBe('completed');
    expect(held.participants).toEqual(NAMES);
    // Both give the survivors' mean update (0.01 .. 0.05: 0.03) to quantization error.
    for (const r of [held, short]) r.adapter.forEach((v, i) => expect(Math.abs(v - (i + 0.03))).toBeLessThan(1e-4));
    // A held poll returns at the next stage (or the end): about one poll per stage, whatever the waits.
    for (const n of NAMES) expect(held.polls.get(n)).toBeLessThanOrEqual(2 * STAGES.length);
    // Short polls every 20 ms while c1 trains for 1.5 s: the other clients poll far more often.
    expect(Math.max(...NAMES.slice(1).map((n) => short.polls.get(n)!))).toBeGreaterThan(2 * STAGES.length);
  }, 60_000);
});
