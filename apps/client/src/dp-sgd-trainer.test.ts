import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, parseModelConfig, tokenizerFromJson, trainByteLevelBpe, type LoraConfig } from '@fedlora/model';
import type { CoordinatorConnection, LocalTrainer, RoundPlan } from '@fedlora/federation';
import { ClientPrivacyGuard, epsilonOf, generateLedgerKey, verifyLedgerFile } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { tokenizeToSequences, trainLocalDpSgd } from '@fedlora/train';
import { parseClientConfig } from './config.js';
import { DpSgdTrainer, dpSgdTrainerSettings } from './dp-sgd-trainer.js';
import { PlanFollowingTrainer } from './run-from-config.js';
import { FederationCoordinator, FederationError, createStrategy, inProcessConnection, runClient, silentLogger } from '@fedlora/federation';

const TEXT = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, I thought I would sail about. ';

let model: CausalLM;
let lora: LoraConfig;
let global: NamedTensors;
let train: Int32Array[];
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  const { tokenizer, config } = trainByteLevelBpe(TEXT.repeat(5), { vocabSize: 300 });
  const cfg = parseModelConfig({ model_type: 'gpt2', vocab_size: 300, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
  model = new CausalLM(cfg, tokenizerFromJson(tokenizer, config), initWeights(cfg, 1, 0.1));
  lora = defaultLoraConfig(model);
  global = initLoraAdapter(model, lora, seededRandomBytes('g'));
  train = tokenizeToSequences(model, TEXT.repeat(3), 12).slice(0, 8);
});
afterAll(() => model?.dispose());

const plan = (round: number): RoundPlan => ({
  round,
  attempt: 0,
  adapterSha256: '',
  // A plan announces the global adapter's layout (the update carries what the LoRA variant trains).
  tensors: [...global].map(([name, t]) => ({ name, shape: [...t.shape] })),
  localSteps: 2,
  learningRate: 1e-3,
  batchSize: 2,
  deadlineUnixMs: 0,
  nonce: 'n',
});

async function guard(epsilon: number): Promise<ClientPrivacyGuard> {
  const dir = mkdtempSync(join(tmpdir(), 'dpsgd-guard-'));
  return ClientPrivacyGuard.open({ ledgerPath: join(dir, 'record-ledger.jsonl'), signer: { writer: 'hospital-a', secretKey: generateLedgerKey().secretKey }, budget: { epsilon, delta: 1e-5 }, unit: 'sequence' });
}

describe('DpSgdTrainer', () => {
  it('trains with DP-SGD and records one record-level ledger entry per round', async () => {
    const g = await guard(1e6);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r'), now: () => new Date(0) });
    expect(t.roundParams(plan(1))).toMatchObject({ mode: 'dp-sgd', clipNorm: 1, samplingRate: 2 / 8, steps: 2 });
    expect(t.roundParams(plan(1)).noiseMultiplier).toBeCloseTo(1, 2); // less the grid's rounding
    for (const round of [1, 2]) {
      expect(await t.accept(plan(round))).toEqual({ accept: true });
      const r = await t.train(plan(round), global);
      expect([...r.delta.keys()]).toEqual([...global.keys()]);
      expect(r.metrics.recordEpsilon).toBe(g.spent());
    }
    const entries = readFileSync(g.ledgerPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; round: number; unit: string; params: unknown });
    expect(entries.map((e) => [e.kind, e.round, e.unit])).toEqual([
      ['round', 1, 'sequence'],
      ['round', 2, 'sequence'],
    ]);
    expect(entries[0]!.params).toEqual(t.roundParams(plan(1)));
    const v = verifyLedgerFile(g.ledgerPath);
    expect(v.valid).toBe(true);
    expect(g.spent()).toBeGreaterThan(0);
  });

  it('refuses a round that would exceed its record-level budget, and never trains it', async () => {
    const g = await guard(0.01);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 0.5, guard: g, rng: seededRandomBytes('r') });
    // The coordinator is told only the reason; the local log gets the numbers.
    expect(await t.accept(plan(1))).toEqual({ accept: false, reason: 'refused: budget', detail: expect.stringMatching(/^record-level: refused: the round would bring epsilon to \d+\.\d+, above this institution's budget 0.01/) });
    await expect(t.train(plan(1), global)).rejects.toThrow(/above this institution's budget 0.01/);
    expect(g.spent()).toBe(0);
    const entries = readFileSync(g.ledgerPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
    expect(entries.map((e) => e.kind)).toEqual(['refused']);
  });

  it('budget first: with only epsilon it calibrates the noise so the planned rounds spend the budget, and records the calibration', async () => {
    const g = await guard(2);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, budget: { epsilon: 2, delta: 1e-5, rounds: 2 }, guard: g, rng: seededRandomBytes('cal') });
    for (const round of [1, 2]) {
      expect(await t.accept(plan(round))).toEqual({ accept: true });
      await t.train(plan(round), global);
    }
    expect(g.spent()).toBeLessThanOrEqual(2);
    expect(2 - g.spent()).toBeLessThan(1e-3);
    const entries = readFileSync(g.ledgerPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { calibration?: Record<string, number> });
    expect(entries[0]!.calibration).toMatchObject({ targetEpsilon: 2, delta: 1e-5, steps: 4, samplingRate: 2 / 8, units: 8 });
    expect(entries[0]!.calibration!.noiseMultiplier).toBe(t.calibration(plan(1))!.noiseMultiplier);
    expect(verifyLedgerFile(g.ledgerPath).valid).toBe(true);
  });

  it('refuses a delta above 1/(number of privacy units) with a clear error', () => {
    expect(() => new DpSgdTrainer({ model, lora, train, clipNorm: 1, budget: { epsilon: 2, delta: 0.2 }, rng: seededRandomBytes('r') })).toThrow(/delta 0.2 is above 1\/8 \(one over the number of privacy units\)/);
  });

  it('rejects a non-positive clip', () => {
    expect(() => new DpSgdTrainer({ model, lora, train, clipNorm: 0, noiseMultiplier: 1, rng: seededRandomBytes('r') })).toThrow(/dpSgd.clipNorm must be > 0, received 0/);
  });

  it('is what a client config with dpSgd trains with', async () => {
    const t = new PlanFollowingTrainer(model, [TEXT.repeat(3)], { evalFraction: 0, defaultSeqLen: 12, seed: 'c', log: silentLogger, dpSgd: { clipNorm: 1, noiseMultiplier: 1 } });
    const r = await t.train({ ...plan(1), localSteps: 1, training: { seqLen: 12, lora } }, global);
    expect(r.metrics.clippedFraction).toBeGreaterThanOrEqual(0); // only the DP-SGD trainer reports it
  });

  it('rejects an unknown per-example gradient method naming the config key', () => {
    expect(() => new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, perExampleGradients: 'vmap' as never, rng: seededRandomBytes('r') })).toThrow(
      /dpSgd.perExampleGradients must be "ghost" or "per-example", received "vmap"/,
    );
  });

  it('trains with the per-example gradient method the client config names (dpSgd.perExampleGradients; default ghost)', async () => {
    // No noise, q = 1 and no LoRA dropout: a step depends only on the method, so each run can be compared bit for bit.
    const docs = [TEXT.repeat(3)];
    const seqs = tokenizeToSequences(model, docs[0]!, 12);
    const direct = async (perExampleGradients: 'ghost' | 'per-example') =>
      (await trainLocalDpSgd(model, lora, global, seqs, { steps: 1, samplingRate: 1, clipNorm: 0.05, noiseMultiplier: 0, learningRate: 1e-3, rng: seededRandomBytes('d'), perExampleGradients })).adapter;
    const fromConfig = async (dpSgd: Record<string, unknown>) => {
      const cfg = parseClientConfig({ name: 'inst-1', coordinator: 'coord.example.org:7443', insecure: true, identity: { secretKeyFile: 'k.json' }, dataDir: 'd', data: { path: 'train.txt' }, dpSgd });
      const t = new PlanFollowingTrainer(model, docs, { evalFraction: 0, defaultSeqLen: 12, seed: 'c', log: silentLogger, dpSgd: { ...dpSgdTrainerSettings(cfg.dpSgd!), unit: { unit: 'sequence' } } });
      const r = await t.train({ ...plan(1), localSteps: 1, batchSize: seqs.length, training: { seqLen: 12, lora } }, global);
      return new Map([...r.delta].map(([n, d]) => [n, Float32Array.from(d.data, (x, i) => x + global.get(n)!.data[i]!)]));
    };
    const [ghost, perExample] = [await direct('ghost'), await direct('per-example')];
    const same = (a: Map<string, Float32Array>, b: NamedTensors) => [...a].every(([n, d]) => d.every((x, i) => x === b.get(n)!.data[i]));
    expect(same(await fromConfig({ clipNorm: 0.05, noiseMultiplier: 0, perExampleGradients: 'per-example' }), perExample)).toBe(true);
    expect(same(await fromConfig({ clipNorm: 0.05, noiseMultiplier: 0 }), ghost)).toBe(true);
    expect(same(new Map([...ghost].map(([n, t]) => [n, t.data])), perExample)).toBe(false); // the methods round differently: the comparison tells them apart
  });

  it('a client with a small record-level budget (dpSgd.epsilon) refuses the round that would exceed it and stops, with a message', async () => {
    // The client config's trainer with the sequence unit: 6 sequences of 12 tokens, batch 2 -> q = 1/3, 1 step of z = 1 a round.
    const docs = [TEXT.repeat(3)];
    const n = tokenizeToSequences(model, docs[0]!, 12).length;
    const oneRound = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 2 / n, steps: 1 }], { delta: 1e-5 }).epsilon;
    const twoRounds = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 2 / n, steps: 2 }], { delta: 1e-5 }).epsilon;
    const budget = (oneRound + twoRounds) / 2; // affords one round, not two
    const g = await guard(budget);
    const trainer = new PlanFollowingTrainer(model, docs, { evalFraction: 0, defaultSeqLen: 12, seed: 'c', log: silentLogger, dpSgd: { clipNorm: 1, noiseMultiplier: 1, guard: g, unit: { unit: 'sequence' } } });
    const coordinator = new FederationCoordinator({
      federationId: 'record-budget',
      rounds: 2,
      minClients: 1,
      roundDeadlineMs: 60_000,
      maxAttemptsPerRound: 1,
      localSteps: 1,
      learningRate: 1e-3,
      batchSize: 2,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: global,
      planParts: () => ({ training: { seqLen: 12, lora } }),
      rng: seededRandomBytes('coord'),
    });
    const run = coordinator.run().catch((e: Error) => e);
    const r = await runClient({ name: 'hospital-a', connection: inProcessConnection(coordinator), trainer, pollMs: 100 });
    expect(r.roundsTrained).toEqual([1]);
    expect(r.stopped).toMatch(/^record-level privacy budget exhausted: round 2 would bring epsilon to [\d.]+, above this institution's budget [\d.]+ .*Training stops/);
    expect(await run).toBeInstanceOf(Error); // the only client stopped: round 2 cannot complete
    expect(coordinator.rounds.map((h) => [h.round, h.status, h.declined])).toEqual([
      [1, 'completed', []],
      [2, 'aborted', ['hospital-a']],
    ]);
    const v = verifyLedgerFile(g.ledgerPath);
    expect(v.valid).toBe(true);
    expect(v.parsed.map((e) => [e.kind, e.round, e.unit])).toEqual([
      ['round', 1, 'sequence'],
      ['refused', 2, 'sequence'],
    ]);
    expect(v.epsilon!).toBeLessThanOrEqual(budget);
  }, 60_000);
});

describe('DpSgdTrainer: the retry of an aborted attempt (released-update.ts)', () => {
  const entriesOf = (g: ClientPrivacyGuard) => verifyLedgerFile(g.ledgerPath).parsed.map((e) => [e.kind, e.round]);
  // A record-level budget that affords one round of plan(1) at z = 1, not two.
  const oneRoundBudget = () => {
    const q = { mechanism: 'sampled_gaussian' as const, noiseMultiplier: 1, samplingRate: 2 / 8 };
    return (epsilonOf([{ ...q, steps: 2 }], { delta: 1e-5 }).epsilon + epsilonOf([{ ...q, steps: 4 }], { delta: 1e-5 }).epsilon) / 2;
  };
  const retryOf = (p: RoundPlan): RoundPlan => ({ ...p, attempt: p.attempt + 1, nonce: `${p.nonce}-retry`, deadlineUnixMs: p.deadlineUnixMs + 60_000 });

  it('re-sends the update it already paid for: the retry trains nothing and spends nothing, the ledger shows one spend for the round', async () => {
    const g = await guard(oneRoundBudget());
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r') });
    const first = await t.train(plan(1), global);
    const spent = g.spent();
    // A second draw would exceed the budget; the same release again costs nothing (post-processing).
    expect(await t.accept(retryOf(plan(1)))).toEqual({ accept: true });
    const again = await t.train(retryOf(plan(1)), global);
    expect(again.delta).toEqual(first.delta);
    expect(again.metrics.recordEpsilon).toBe(spent);
    expect(g.spent()).toBe(spent);
    expect(entriesOf(g)).toEqual([['round', 1]]);
    // What the caller got is a copy: changing it does not change what a later retry sends.
    for (const v of again.delta.values()) v.data.fill(7);
    expect((await t.train(retryOf(retryOf(plan(1))), global)).delta).toEqual(first.delta);
  });

  it.each([
    ['a batch size (sampling rate)', (p: RoundPlan) => ({ ...p, batchSize: 4 })],
    ['local steps', (p: RoundPlan) => ({ ...p, localSteps: 1 })],
    ['a learning rate', (p: RoundPlan) => ({ ...p, learningRate: 2e-3 })],
    ['planned rounds', (p: RoundPlan) => ({ ...p, training: { plannedRounds: 5 } })],
    ['a global adapter hash', (p: RoundPlan) => ({ ...p, adapterSha256: 'other' })],
  ])('trains and spends again for a retry that changes %s, and refuses it when the budget cannot pay', async (_what, change) => {
    const rich = await guard(1e6);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: rich, rng: seededRandomBytes('r') });
    const first = await t.train(plan(1), global);
    const changed = change(retryOf(plan(1)));
    const again = await t.train(changed, global);
    expect(again.delta).not.toEqual(first.delta);
    expect(entriesOf(rich)).toEqual([['round', 1], ['round', 1]]);
    const poor = await guard(oneRoundBudget());
    const u = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: poor, rng: seededRandomBytes('r') });
    await u.train(plan(1), global);
    expect(await u.accept(changed)).toMatchObject({ accept: false, reason: 'refused: budget' });
    await expect(u.train(changed, global)).rejects.toThrow(/above this institution's budget/);
  });

  it('trains and spends again when the global adapter it receives differs from the one it trained from', async () => {
    const g = await guard(1e6);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r') });
    await t.train(plan(1), global);
    const other = new Map([...global].map(([n, v]) => [n, { shape: [...v.shape], data: Float32Array.from(v.data, (x) => x + 0.01) }]));
    await t.train(retryOf(plan(1)), other);
    expect(entriesOf(g)).toEqual([['round', 1], ['round', 1]]);
  });

  it('with reuseOnRetry false trains and spends for every attempt', async () => {
    const g = await guard(1e6);
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r'), reuseOnRetry: false });
    const first = await t.train(plan(1), global);
    const again = await t.train(retryOf(plan(1)), global);
    expect(again.delta).not.toEqual(first.delta);
    expect(entriesOf(g)).toEqual([['round', 1], ['round', 1]]);
  });

  it('an attempt that closes during the last step keeps the accounted update for the retry; one that closes earlier spends nothing', async () => {
    const closed = new FederationError('failed-precondition', 'round 1 attempt 0 closed at the coordinator');
    const closesAt = (step: number) => async (s: number) => {
      if (s === step) throw closed;
    };
    const g = await guard(oneRoundBudget());
    const t = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r') });
    // Closed after step 1 of 2: nothing left the client, nothing is recorded or kept.
    await expect(t.train(plan(1), global, closesAt(1))).rejects.toBe(closed);
    expect(g.spent()).toBe(0);
    // Closed after the last step: the release is accounted and kept; the retry sends it.
    await expect(t.train(retryOf(plan(1)), global, closesAt(2))).rejects.toBe(closed);
    expect(entriesOf(g)).toEqual([['round', 1]]);
    const spent = g.spent();
    await t.train(retryOf(retryOf(plan(1))), global);
    expect(g.spent()).toBe(spent);
    expect(entriesOf(g)).toEqual([['round', 1]]);
  });

  it('over a real coordinator: an attempt aborted after this client uploaded is retried with the same update, and its budget still pays for the round', async () => {
    const g = await guard(oneRoundBudget());
    const dp = new DpSgdTrainer({ model, lora, train, clipNorm: 1, noiseMultiplier: 1, guard: g, rng: seededRandomBytes('r') });
    const coordinator = new FederationCoordinator({
      federationId: 'retry-reuse',
      rounds: 1,
      minClients: 2,
      roundDeadlineMs: 600_000,
      maxAttemptsPerRound: 2,
      localSteps: 2,
      learningRate: 1e-3,
      batchSize: 2,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: global,
      rng: seededRandomBytes('coord'),
    });
    // The DP client's uploads, and a signal when its first one reached the coordinator.
    const uploads: NamedTensors[] = [];
    let uploaded!: () => void;
    const firstUpload = new Promise<void>((resolve) => (uploaded = resolve));
    const base = inProcessConnection(coordinator);
    const recording: CoordinatorConnection = {
      ...base,
      uploadUpdate: async (u) => {
        await base.uploadUpdate(u);
        uploads.push(u.delta);
        uploaded();
      },
    };
    // The other institution declines attempt 1 once the DP client's update is in (so that attempt aborts), and takes part in attempt 2.
    const other: LocalTrainer = {
      numExamples: 8,
      accept: async (p) => (p.attempt === 1 ? (await firstUpload, { accept: false, reason: 'busy' }) : { accept: true }),
      train: async (_p, glob) => ({ delta: new Map([...glob].map(([n, v]) => [n, { shape: [...v.shape], data: new Float32Array(v.data.length) }])), numExamples: 8, trainLoss: 1 }),
    };
    const run = coordinator.run();
    const [a, b] = await Promise.all([
      runClient({ name: 'hospital-a', connection: recording, trainer: dp, pollMs: 100 }),
      runClient({ name: 'hospital-b', connection: inProcessConnection(coordinator), trainer: other, pollMs: 100 }),
    ]);
    await run;
    expect(coordinator.rounds.map((h) => [h.round, h.attempt, h.status])).toEqual([
      [1, 1, 'aborted'],
      [1, 2, 'completed'],
    ]);
    expect(a.roundsTrained).toEqual([1, 1]);
    expect(b.roundsTrained).toEqual([1]);
    expect(uploads).toHaveLength(2);
    expect(uploads[1]).toEqual(uploads[0]);
    expect(entriesOf(g)).toEqual([['round', 1]]);
    expect(verifyLedgerFile(g.ledgerPath).valid).toBe(true);
  }, 60_000);
});
