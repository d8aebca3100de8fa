import { describe, expect, it } from 'vitest';
import { testCoordinator } from './test-helpers.js';
import { generateIdentity } from '@fedlora/secagg';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { CoordinatorConnection, LocalTrainer } from './client-runner.js';
import { runClient } from './client-runner.js';
import { AttemptLiveness } from './attempt-liveness.js';
import { FederationError } from './errors.js';
import { inProcessConnection } from './in-process-connection.js';

const rng = seededRandomBytes('attempt-liveness-test');
const NAMES = ['c1', 'c2', 'c3'];
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

/** A clock the test moves forward at once (as work that blocks the event loop would), plus real time. */
function warpClock(): Clock & { warp(ms: number): void } {
  let offset = 0;
  return { now: () => systemClock.now() + offset, sleep: systemClock.sleep, warp: (ms) => (offset += ms) };
}

function constantDelta(global: NamedTensors, value: number): NamedTensors {
  const delta: NamedTensors = new Map();
  for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
  return delta;
}

/** An adapter of `n` values (one tensor), zero. */
function adapterOf(n: number): NamedTensors {
  return new Map([['lora_B', { shape: [n], data: new Float32Array(n) }]]);
}

function secureCoordinator(clock: Clock, o: { roundDeadlineMs: number; stageTimeoutMs: number; livenessMs: number; maxAttempts: number; adapter: NamedTensors }) {
  return testCoordinator({
    federationId: 'liveness',
    minClients: 3,
    minAvailableClients: 3,
    maxAttemptsPerRound: o.maxAttempts,
    roundDeadlineMs: o.roundDeadlineMs,
    learningRate: 0,
    initialAdapter: o.adapter,
    rng,
    clock,
    secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 10, stageTimeoutMs: o.stageTimeoutMs, livenessMs: o.livenessMs, rng },
  });
}

describe('a client whose round attempt closes while it trains', () => {
  it('stops training at its next step and takes part in the retry', async () => {
    const clock = warpClock();
    const DEADLINE_MS = 120_000;
    // Stage timeouts far above anything the machine's load can add: only the attempt's closing matters.
    const coordinator = secureCoordinator(clock, { roundDeadlineMs: DEADLINE_MS, stageTimeoutMs: 600_000, livenessMs: 3_600_000, maxAttempts: 2, adapter: adapterOf(6) });
    const run = coordinator.run();
    let stoppedBy: unknown;
    const attemptsFinished: number[] = [];
    // c3's first attempt outlasts the round deadline and would train forever: only a closed attempt stops it.
    const endless: LocalTrainer = {
      numExamples: 30,
      async train(plan, global, progress) {
        if (plan.attempt === 1) {
          clock.warp(DEADLINE_MS + 10_000);
          for (let s = 1; ; s++) {
            try {
              await progress!(s);
            } catch (err) {
              stoppedBy = err;
              throw err;
            }
            await new Promise((r) => setTimeout(r, 5)); // a step of real work
          }
        }
        attemptsFinished.push(plan.attempt);
        return { delta: constantDelta(global, 0.03), numExamples: 30, trainLoss: 3 };
      },
    };
    const quick = (value: number, n: number): LocalTrainer => ({
      numExamples: n,
      async train(_plan, global) {
        return { delta: constantDelta(global, value), numExamples: n, trainLoss: 1 };
      },
    });
    const trainers = [quick(0.01, 10), quick(0.02, 20), endless];
    const clients = NAMES.map((name, i) =>
      runClient({ name, connection: inProcessConnection(coordinator), trainer: trainers[i]!, pollMs: 100, heartbeatMs: 20, clock, secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng } }),
    );
    const history = await run;
    const ran = await Promise.all(clients);

    expect(history.map((h) => [h.attempt, h.status])).toEqual([
      [1, 'aborted'],
      [2, 'completed'],
    ]);
    expect(history[1]!.participantNames).toEqual(NAMES);
    expect(stoppedBy).toBeInstanceOf(FederationError);
    expect(stoppedBy).toMatchObject({ code: 'failed-precondition', message: expect.stringMatching(/round 1 attempt 1 closed/) });
    expect(attemptsFinished).toEqual([2]);
    expect(ran.map((r) => r.roundsTrained)).toEqual([[1], [1], [1]]);
  });

  it('a heartbeat for a closed attempt of the same round says the round is not open (the retry has the same round number)', async () => {
    const clock = warpClock();
    const coordinator = secureCoordinator(clock, { roundDeadlineMs: 1000, stageTimeoutMs: 600_000, livenessMs: 3_600_000, maxAttempts: 3, adapter: adapterOf(6) });
    const conns = NAMES.map(() => inProcessConnection(coordinator));
    await Promise.all(conns.map((c, i) => c.register(NAMES[i]!, 1)));
    const run = coordinator.run().catch(() => undefined);
    const first = await conns[0]!.getTask(60_000);
    expect(first).toMatchObject({ kind: 'train', plan: { round: 1, attempt: 1 } });
    expect(await conns[0]!.heartbeat(1)).toEqual({ roundOpen: true });
    // Attempt 1 passes its deadline while c1 "trains"; attempt 2 of round 1 opens.
    clock.warp(2000);
    while (coordinator.openRound()?.attempt !== 2) await new Promise((r) => setTimeout(r, 20));
    expect(await conns[0]!.heartbeat(1)).toEqual({ roundOpen: false });
    // Once c1 is handed attempt 2, its heartbeats are for an open attempt again.
    expect(await conns[0]!.getTask(60_000)).toMatchObject({ kind: 'train', plan: { round: 1, attempt: 2 } });
    expect(await conns[0]!.heartbeat(1)).toEqual({ roundOpen: true });
    coordinator.stop();
    await run;
  });
});

describe('a client working on its masked input', () => {
  it('proves liveness between the phases of a long encoding (integer noise drawn in slices), not only between training steps', async () => {
    const clock = warpClock();
    // 20,000 values: the encoding pads to 32,768 words, drawn as 8 slices of noise.
    const coordinator = secureCoordinator(clock, { roundDeadlineMs: 3_600_000, stageTimeoutMs: 600_000, livenessMs: 3_600_000, maxAttempts: 1, adapter: adapterOf(20_000) });
    const run = coordinator.run();
    // c3's noise "takes" this much clock time, in proportion to the words drawn (the others' is instant: the clock is shared).
    const TOTAL_NOISE_MS = 80_000;
    const SLOW = 'c3';
    const signals = new Map<string, Array<{ at: number; what: string }>>(NAMES.map((n) => [n, []]));
    const trainedAt = new Map<string, number>();
    const watched = (name: string): CoordinatorConnection => {
      const c = inProcessConnection(coordinator);
      const log = (what: string) => signals.get(name)!.push({ at: clock.now(), what });
      return {
        ...c,
        heartbeat: (round) => (log('heartbeat'), c.heartbeat(round)),
        secAggExchange: (round, nonce, stage, payload, report) => (log(stage === 'collect' ? 'collect' : 'exchange'), c.secAggExchange(round, nonce, stage, payload, report)),
      };
    };
    const clients = NAMES.map((name, i) =>
      runClient({
        name,
        connection: watched(name),
        trainer: {
          numExamples: 10,
          async train(_plan, global) {
            trainedAt.set(name, clock.now());
            return { delta: constantDelta(global, 0.001 * (i + 1)), numExamples: 10, trainLoss: 1 };
          },
        },
        pollMs: 100,
        heartbeatMs: 1000,
        clock,
        secure: {
          identitySecretKey: identities.get(name)!.secretKey,
          members,
          rng,
          noiseFor: () => (n) => {
            if (name === SLOW) clock.warp((TOTAL_NOISE_MS * n) / 32_768);
            return new Int32Array(n);
          },
        },
      }),
    );
    const [h] = await run;
    await Promise.all(clients);
    expect(h!.status).toBe('completed');
    const SLICE_MS = TOTAL_NOISE_MS / 8;
    for (const name of [SLOW]) {
      const from = trainedAt.get(name)!;
      const s = signals.get(name)!;
      const firstInput = s.find((x) => x.what === 'collect' && x.at >= from)!;
      expect(firstInput).toBeDefined();
      const times = [from, ...s.filter((x) => x.at >= from && x.at <= firstInput.at).map((x) => x.at)];
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      // Without liveness inside the encoding the gap is the whole 80 s of noise.
      expect(Math.max(...gaps)).toBeLessThan(2 * SLICE_MS);
      expect(firstInput.at - from).toBeGreaterThanOrEqual(TOTAL_NOISE_MS);
    }
  });
});

describe('heartbeats against a coordinator that does not answer', () => {
  it('keeps one heartbeat in flight, not one more per interval', async () => {
    const clock = warpClock();
    let calls = 0;
    const hung = { heartbeat: () => (calls++, new Promise<{ roundOpen: boolean }>(() => {})) };
    const live = new AttemptLiveness(hung, { round: 1, attempt: 1 }, 1000, clock);
    try {
      for (let step = 0; step < 20; step++) {
        clock.warp(5000); // each step outlasts the heartbeat interval
        await live.progress(step);
      }
    } finally {
      live.stop();
    }
    expect(calls).toBe(1);
  });
});
