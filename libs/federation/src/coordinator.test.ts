import { describe, expect, it } from 'vitest';
import { runClient } from './client-runner.js';
import { FederationCoordinator } from './coordinator.js';
import type { CoordinatorOptions } from './coordinator.js';
import { FederationError } from './errors.js';
import { inProcessConnection } from './in-process-connection.js';
import { constantTrainer, testCoordinator, tinyAdapter } from './test-helpers.js';

function coordinator(over: Partial<CoordinatorOptions> = {}): FederationCoordinator {
  return testCoordinator({
    roundDeadlineMs: 3000,
    ...over,
  });
}

describe('FederationCoordinator (in-process)', () => {
  it('applies the example-weighted mean of the client deltas', async () => {
    const c = coordinator({ rounds: 2, minClients: 3 });
    const run = c.run();
    const trainers = [constantTrainer(1, 10), constantTrainer(2, 30), constantTrainer(4, 60)];
    await Promise.all(trainers.map((t, i) => runClient({ name: `c${i}`, connection: inProcessConnection(c), trainer: t, pollMs: 200 })));
    const history = await run;
    expect(history.map((h) => h.status)).toEqual(['completed', 'completed']);
    const perRound = (1 * 10 + 2 * 30 + 4 * 60) / 100; // 3.1
    const a = c.adapter.get('lora_A')!.data;
    for (let i = 0; i < 6; i++) expect(a[i]).toBeCloseTo(i + 2 * perRound, 5);
    expect(history[0]!.participants).toBe(3);
    expect(history[0]!.numExamples).toBe(100);
  });

  it('drops a client that never answers and completes the round with the rest', async () => {
    const c = coordinator({ roundDeadlineMs: 600 });
    const run = c.run();
    c.register('silent', 5); // registers, then never polls or uploads
    await Promise.all([0, 1].map((i) => runClient({ name: `c${i}`, connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 100 })));
    const [h] = await run;
    expect(h!.status).toBe('completed');
    expect(h!.participants).toBe(2);
    expect(h!.dropped).toEqual(['silent']);
  });

  it('aborts a round with fewer than minClients reports and retries it', async () => {
    const c = coordinator({ minClients: 2, roundDeadlineMs: 300, maxAttemptsPerRound: 2 });
    const run = c.run();
    c.register('silent', 5);
    const stopClient = new AbortController();
    const trainer = constantTrainer(1, 1);
    const client = runClient({ name: 'c0', connection: inProcessConnection(c), trainer, pollMs: 100, signal: stopClient.signal });
    await expect(run).rejects.toThrow(/round 1 aborted 2 times/);
    expect(trainer.plans.map((p) => p.attempt)).toEqual([1, 2]);
    expect(c.rounds.map((r) => [r.status, r.attempt])).toEqual([
      ['aborted', 1],
      ['aborted', 2],
    ]);
    expect(c.rounds[0]!.reason).toMatch(/1 of 2 clients reported, minClients is 2/);
    // The client still polling is told the run failed, and why, and stops (no retrying for an hour).
    const r = await client;
    expect(r.stopped).toMatch(/^the federation failed at the coordinator: round 1 aborted 2 times \(last: .*1 of 2 clients reported/);
    expect(stopClient.signal.aborted).toBe(false);
  });

  it('discards a result that arrives after the round closed', async () => {
    const c = coordinator({ minClients: 1, roundDeadlineMs: 200 });
    const run = c.run();
    const { clientId, sessionToken } = c.register('late', 1);
    c.register('ontime', 1);
    const task = await c.getTask(clientId, sessionToken, 1000);
    expect(task.kind).toBe('train');
    const conn = inProcessConnection(c);
    await runClient({ name: 'ontime', connection: conn, trainer: constantTrainer(1, 1), pollMs: 100 });
    await run;
    const plan = task.kind === 'train' ? task.plan : undefined;
    expect(() =>
      c.submitUpdate(clientId, sessionToken, {
        header: { clientId, round: 1, nonce: plan!.nonce, numExamples: 1, trainLoss: 1, tensors: plan!.tensors, metrics: {} },
        delta: tinyAdapter(),
      }),
    ).toThrow(FederationError);
    expect(c.rounds[0]!.participants).toBe(1);
  });

  it('refuses a non-finite or wrong-shape update and leaves the aggregate untouched', async () => {
    const c = coordinator({ minClients: 1, roundDeadlineMs: 400 });
    const run = c.run();
    const { clientId, sessionToken } = c.register('bad', 1);
    const task = await c.getTask(clientId, sessionToken, 1000);
    if (task.kind !== 'train') throw new Error('expected a round');
    const header = { clientId, round: 1, nonce: task.plan.nonce, numExamples: 1, trainLoss: 1, tensors: task.plan.tensors, metrics: {} };
    const nan = tinyAdapter();
    nan.get('lora_B')!.data[3] = Number.NaN;
    expect(() => c.submitUpdate(clientId, sessionToken, { header, delta: nan })).toThrow(/"lora_B" has a non-finite value at index 3/);
    const wrong = tinyAdapter();
    wrong.set('lora_A', { shape: [3, 2], data: new Float32Array(6) });
    expect(() => c.submitUpdate(clientId, sessionToken, { header, delta: wrong })).toThrow(/shape \[3, 2\], the plan says \[2, 3\]/);
    const good = tinyAdapter();
    good.get('lora_A')!.data.fill(0.5);
    c.submitUpdate(clientId, sessionToken, { header, delta: good });
    await run;
    expect(Array.from(c.adapter.get('lora_A')!.data)).toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
  });

  it('refuses an unknown client and a stale session token', () => {
    const c = coordinator();
    const first = c.register('a', 1);
    c.register('a', 1); // reconnect: new session
    expect(() => c.authenticate('a', first.sessionToken)).toThrow(/register again/);
    expect(() => c.authenticate('nobody', 'x')).toThrow(FederationError);
  });

  it('lets a client that disconnected rejoin at the next round', async () => {
    const c = coordinator({ rounds: 2, minClients: 2, roundDeadlineMs: 500 });
    const run = c.run();
    const stable = runClient({ name: 's', connection: inProcessConnection(c), trainer: constantTrainer(1, 1), pollMs: 100 });
    const flaky = new AbortController();
    const trainer = constantTrainer(1, 1);
    const first = runClient({ name: 'f', connection: inProcessConnection(c), trainer, pollMs: 100, signal: flaky.signal, onRoundTrained: () => flaky.abort() });
    await first;
    // Back again with a fresh connection (new session token).
    await runClient({ name: 'f', connection: inProcessConnection(c), trainer, pollMs: 100 });
    await stable;
    const history = await run;
    expect(history.filter((h) => h.status === 'completed').map((h) => h.round)).toEqual([1, 2]);
    expect(trainer.plans.map((p) => p.round)).toEqual([1, 2]);
  });
});
