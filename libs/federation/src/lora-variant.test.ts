import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { runClient } from './client-runner.js';
import { FederationError } from './errors.js';
import { inProcessConnection } from './in-process-connection.js';
import { checkPlanLayout, planUpdate, updateTensors } from './lora-variant.js';
import { createStrategy } from './strategy.js';
import { testCoordinator, tinyAdapter } from './test-helpers.js';
import type { LocalTrainer } from './client-runner.js';
import type { RoundPlan } from './types.js';

const plan = (extra: Record<string, unknown>): RoundPlan => ({
  round: 1,
  attempt: 1,
  adapterSha256: '',
  tensors: [
    { name: 'lora_A', shape: [2, 3] },
    { name: 'lora_B', shape: [3, 2] },
  ],
  localSteps: 1,
  learningRate: 0.1,
  batchSize: 1,
  deadlineUnixMs: 0,
  nonce: 'n',
  // The plan's training part as it may arrive (a partial or unknown LoRA variant is what these tests probe).
  training: extra as RoundPlan['training'],
});

/** A trainer that moves only B by `value` (as FFA-LoRA training does), and records the updates it sent. */
function bOnlyTrainer(value: number, numExamples: number): LocalTrainer & { sent: NamedTensors[] } {
  const sent: NamedTensors[] = [];
  return {
    numExamples,
    sent,
    async train(p, global) {
      const local: NamedTensors = new Map([...global].map(([k, t]) => [k, { shape: t.shape, data: k === 'lora_B' ? t.data.map((v) => v + value) : t.data }]));
      const delta = planUpdate(p, local, global);
      sent.push(delta);
      return { delta, numExamples, trainLoss: 1 };
    },
  };
}

describe('LoRA variants in the round plan', () => {
  it('an update carries every tensor with lora (the default) and only the B matrices with ffa', () => {
    expect(updateTensors(plan({})).map((t) => t.name)).toEqual(['lora_A', 'lora_B']);
    expect(updateTensors(plan({ lora: { r: 2, variant: 'lora' } })).map((t) => t.name)).toEqual(['lora_A', 'lora_B']);
    expect(updateTensors(plan({ lora: { r: 2, variant: 'ffa' } })).map((t) => t.name)).toEqual(['lora_B']);
  });

  it('a client refuses a plan with an unknown variant, naming it', () => {
    expect(() => checkPlanLayout(plan({ lora: { variant: 'dora' } }), tinyAdapter())).toThrow(FederationError);
    expect(() => checkPlanLayout(plan({ lora: { variant: 'dora' } }), tinyAdapter())).toThrow(/lora.variant must be one of lora, ffa, received "dora"/);
    expect(checkPlanLayout(plan({ lora: { variant: 'ffa' } }), tinyAdapter())).toBe('ffa');
  });

  it('refuses to send an FFA update from a trainer that changed A (it trained another variant)', () => {
    const global = tinyAdapter(1);
    const local: NamedTensors = new Map([...global].map(([k, t]) => [k, { shape: t.shape, data: t.data.map((v) => v + 0.5) }]));
    expect(() => planUpdate(plan({ lora: { variant: 'ffa' } }), local, global)).toThrow(/training changed "lora_A", which lora.variant ffa keeps frozen/);
    expect([...planUpdate(plan({}), local, global).keys()]).toEqual(['lora_A', 'lora_B']);
  });

  it('with ffa the coordinator averages only B, keeps A bit for bit, and refuses an update that carries A', async () => {
    const initial = tinyAdapter(1);
    const c = testCoordinator({
      federationId: 'ffa',
      minAvailableClients: 3,
      strategy: createStrategy({ name: 'fedadam' }), // even an adaptive server optimizer leaves A alone
      initialAdapter: initial,
      planParts: () => ({ training: { lora: { variant: 'ffa' } } as RoundPlan['training'] }),
    });
    const run = c.run();
    const trainers = [bOnlyTrainer(1, 10), bOnlyTrainer(4, 30)];
    const clients = trainers.map((t, i) => runClient({ name: `c${i}`, connection: inProcessConnection(c), trainer: t, pollMs: 100 }));
    const { clientId, sessionToken } = c.register('with-a', 1);
    const task = await c.getTask(clientId, sessionToken, 10_000);
    if (task.kind !== 'train') throw new Error('expected a round');
    expect(task.plan.tensors.map((t) => t.name)).toEqual(['lora_A', 'lora_B']); // the plan announces the whole adapter
    const header = { clientId, round: 1, nonce: task.plan.nonce, numExamples: 1, trainLoss: 1, tensors: task.plan.tensors, metrics: {} };
    expect(() => c.submitUpdate(clientId, sessionToken, { header, delta: tinyAdapter(1) })).toThrow(/update has 2 tensors, the plan has 1/);
    c.decline(clientId, sessionToken, 1, 'test');
    await Promise.all(clients);
    const [h] = await run;
    expect(h).toMatchObject({ status: 'completed', participants: 2 });
    expect(trainers.every((t) => t.sent.length === 1 && [...t.sent[0]!.keys()].join() === 'lora_B')).toBe(true);
    expect(c.adapter.get('lora_A')!.data).toEqual(initial.get('lora_A')!.data);
    expect(c.adapter.get('lora_B')!.data.every((v) => v > 0)).toBe(true);
  });
});
