import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientPrivacyPolicy, ClientUpdate, CoordinatorConnection, LocalTrainer, PlannedPrivacy, RoundPlan } from '@fedlora/federation';
import { drawCohort, runClient, silentLogger } from '@fedlora/federation';
import { ClientPrivacyGuard, composeRdp, generateLedgerKey, rdpToEpsilon, resolveOrders, roundEvents, verifyLedgerFile } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, sha256Named } from '@fedlora/tensor';
import { PrivacyGuardedTrainer } from './privacy-trainer.js';

const GLOBAL: NamedTensors = new Map([['w', { shape: [2], data: new Float32Array([0, 0]) }]]);
/** The update of issue 16, finding 2: sent as is, it shows the coordinator the institution's raw delta. */
const RAW = [30, -40];

const rawTrainer = (): LocalTrainer => ({
  numExamples: 10,
  async train() {
    return { delta: new Map([['w', { shape: [2], data: new Float32Array(RAW) }]]), numExamples: 10, trainLoss: 1 };
  },
});

const plan = (round: number, privacy?: Partial<PlannedPrivacy>): RoundPlan => ({
  round,
  attempt: 1,
  adapterSha256: sha256Named(GLOBAL),
  tensors: [{ name: 'w', shape: [2] }],
  localSteps: 1,
  learningRate: 1e-3,
  batchSize: 1,
  deadlineUnixMs: 0,
  nonce: `n${round}`,
  ...(privacy ? { privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, secureAggregation: false, delta: 1e-5, dimension: 2, ...privacy } as PlannedPrivacy } : {}),
});

async function openGuard(epsilon = 1e6): Promise<ClientPrivacyGuard> {
  const dir = mkdtempSync(join(tmpdir(), 'policy-guard-'));
  return ClientPrivacyGuard.open({ ledgerPath: join(dir, 'privacy-ledger.jsonl'), signer: { writer: 'hospital-a', secretKey: generateLedgerKey().secretKey }, budget: { epsilon, delta: 1e-5 }, unit: 'institution' });
}

/** A hostile coordinator: serves the given plans in turn, then ends the run; keeps every update it receives. */
function hostileCoordinator(plans: RoundPlan[]): { connection: CoordinatorConnection; uploads: ClientUpdate[]; declines: string[] } {
  const uploads: ClientUpdate[] = [];
  const declines: string[] = [];
  const queue = [...plans];
  const connection: CoordinatorConnection = {
    register: async () => ({ clientId: 'hospital-a' }),
    getTask: async () => {
      const p = queue.shift();
      return p ? { kind: 'train', plan: p } : { kind: 'finished' };
    },
    downloadAdapter: async () => GLOBAL,
    uploadUpdate: async (u) => void uploads.push(u),
    decline: async (_round, reason) => void declines.push(reason),
    heartbeat: async () => ({ roundOpen: true }),
    secAggExchange: async () => ({ kind: 'aborted', stage: '', payload: new Uint8Array(0) }),
    close() {},
  };
  return { connection, uploads, declines };
}

const CENTRAL_OK: ClientPrivacyPolicy = { minMode: 'central' };

describe('PrivacyGuardedTrainer against a hostile coordinator (issue 16, finding 2)', () => {
  it('sends no update when a plan has no privacy part, and stops naming why', async () => {
    const guard = await openGuard();
    const hostile = hostileCoordinator([plan(1)]);
    const r = await runClient({ name: 'hospital-a', connection: hostile.connection, trainer: new PrivacyGuardedTrainer(rawTrainer(), guard, undefined, CENTRAL_OK), logger: silentLogger });
    expect(hostile.uploads).toHaveLength(0);
    expect(hostile.declines).toEqual(['refused: policy']);
    expect(r.stopped).toMatch(/round 1: the plan carries no privacy parameters, but this institution has a privacy budget/);
    // The refusal is in the institution's own ledger, and nothing was released.
    const v = verifyLedgerFile(guard.ledgerPath);
    expect(v.valid).toBe(true);
    expect(v.rounds.map((e) => e.kind)).toEqual(['refused']);
    expect(v.epsilon).toBe(0);
  });

  it('never returns a raw update from train, even if accept was skipped', async () => {
    const t = new PrivacyGuardedTrainer(rawTrainer(), await openGuard(), undefined, CENTRAL_OK);
    await expect(t.train(plan(1), GLOBAL)).rejects.toThrow(/no privacy parameters/);
  });

  it('refuses central noise by default: the coordinator would add it (and see the clipped update)', async () => {
    const hostile = hostileCoordinator([plan(1, { mode: 'central' })]);
    const r = await runClient({ name: 'hospital-a', connection: hostile.connection, trainer: new PrivacyGuardedTrainer(rawTrainer(), await openGuard()), logger: silentLogger });
    expect(hostile.uploads).toHaveLength(0);
    expect(r.stopped).toMatch(/uses central noise \(added by the coordinator\).*privacy\.policy\.minMode: distributed/);
  });

  it('refuses a noise multiplier below, or a clip above, its own policy', async () => {
    const policy: ClientPrivacyPolicy = { minMode: 'central', minNoiseMultiplier: 0.8, maxClipNorm: 1 };
    const t = new PrivacyGuardedTrainer(rawTrainer(), await openGuard(), undefined, policy);
    expect(await t.accept(plan(1, { noiseMultiplier: 0.3 }))).toMatchObject({ accept: false, reason: 'refused: policy', detail: expect.stringMatching(/noise multiplier 0.3 is below this institution's minimum 0.8/) });
    expect(await t.accept(plan(2, { clipNorm: 50 }))).toMatchObject({ accept: false, reason: 'refused: policy', detail: expect.stringMatching(/clip norm 50 is above this institution's maximum 1/) });
    expect(await t.accept(plan(3, { noiseMultiplier: 0.8, clipNorm: 1 }))).toEqual({ accept: true });
  });

  it('refuses distributed noise planned for more survivors than the cohort it names', async () => {
    const p: RoundPlan = {
      ...plan(1, { mode: 'distributed', minSurvivors: 10 }),
      secagg: { ids: { a: 1, b: 2, c: 3 }, roster: {}, k: 2, t: 2, rotationSeed: '00', encoding: { dim: 2, paddedDim: 2, bits: 32, scale: 100, clip: 1, roundedNormBound2: 1, beta: 0, noiseStddevInt: 1, overflowProb: 0, quantizationStd: 0, n: 3 } },
    };
    const t = new PrivacyGuardedTrainer(rawTrainer(), await openGuard());
    expect(await t.accept(p)).toMatchObject({ accept: false, detail: expect.stringMatching(/plans its noise for 10 survivors but names a cohort of 3/) });
  });

  it('clips and records a plan that meets the policy', async () => {
    const guard = await openGuard();
    const t = new PrivacyGuardedTrainer(rawTrainer(), guard, () => new Date(0), CENTRAL_OK);
    expect(await t.accept(plan(1, {}))).toEqual({ accept: true });
    const r = await t.train(plan(1, {}), GLOBAL);
    expect([...r.delta.get('w')!.data].map((x) => Math.round(x * 1e4) / 1e4)).toEqual([0.6, -0.8]);
    expect(verifyLedgerFile(guard.ledgerPath).rounds.map((e) => e.kind)).toEqual(['round']);
  });
});

describe('client-side accounting of client sampling (issue 16, finding 3)', () => {
  // The federation: 5 institutions, minClients 3, a plan claiming q = 0.2, 50 rounds, z = 1, delta 1e-5.
  const orders = resolveOrders(undefined);
  const epsilonAfter = (q: number, rounds: number) => {
    const rdp = composeRdp([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: q, steps: rounds }], orders);
    return rdpToEpsilon(orders, rdp, 1e-5, 'improved').epsilon;
  };

  it('reproduces the issue: the plan q (0.2) says 11.3, the real inclusion rate (0.6) 33.6, no amplification 57.3', () => {
    const { sampling } = drawCohort(['a', 'b', 'c', 'd', 'e'], 0.2, 'uniform', seededRandomBytes('draw'), 3);
    expect(sampling.rate).toBeCloseTo(0.6, 12); // max(minClients, ceil(0.2 x 5)) = 3 of 5
    expect(epsilonAfter(0.2, 50)).toBeCloseTo(11.3, 1);
    expect(epsilonAfter(sampling.rate, 50)).toBeCloseTo(33.6, 1);
    expect(epsilonAfter(1, 50)).toBeCloseTo(57.3, 1);
  });

  it('accounts q = 1 whatever sampling rate the plan claims: 50 rounds cost 57.3, not 11.3', async () => {
    const guard = await openGuard();
    const t = new PrivacyGuardedTrainer(rawTrainer(), guard, () => new Date(0), CENTRAL_OK);
    const claimed = plan(1, { samplingRate: 0.2 });
    expect(await t.accept(claimed)).toEqual({ accept: true });
    await t.train(claimed, GLOBAL);
    const entry = JSON.parse(readFileSync(guard.ledgerPath, 'utf8').trim()) as { params: { samplingRate: number }; events: unknown[] };
    expect(entry.params.samplingRate).toBe(1);
    // 50 rounds of what this client records: the events of its entry, composed 50 times.
    const rdp = composeRdp(Array.from({ length: 50 }, () => roundEvents(entry.params as never)).flat(), orders);
    expect(rdpToEpsilon(orders, rdp, 1e-5, 'improved').epsilon).toBeCloseTo(57.3, 1);
  });

  it('refuses a plan claiming unverifiable sampling when its policy says so', async () => {
    const t = new PrivacyGuardedTrainer(rawTrainer(), await openGuard(), undefined, { minMode: 'central', unverifiedSampling: 'refuse' });
    expect(await t.accept(plan(1, { samplingRate: 0.2 }))).toMatchObject({ accept: false, detail: expect.stringMatching(/claims client sampling at rate 0.2, which this institution cannot verify/) });
  });

  it("records the draw its plan announced (RoundPlan.sampling) with the basis, still at q = 1, and its ledger verifies", async () => {
    const poisson = { mode: 'poisson' as const, population: 10_000, expectedCohort: 1000, rate: 0.1, drawn: 987 };
    const cases = [
      { draw: poisson, basis: 'not-verifiable-by-institution' },
      { draw: { ...poisson, mode: 'uniform' as const, drawn: 1000 }, basis: 'fixed-size-not-amplified' },
    ];
    for (const c of cases) {
      const guard = await openGuard();
      const t = new PrivacyGuardedTrainer(rawTrainer(), guard, () => new Date(0), CENTRAL_OK);
      const sampled = { ...plan(1, { samplingRate: 0.1 }), sampling: c.draw };
      await t.train(sampled, GLOBAL);
      const entry = JSON.parse(readFileSync(guard.ledgerPath, 'utf8').trim()) as { params: { samplingRate: number; sampling: Record<string, unknown> } };
      expect(entry.params.samplingRate).toBe(1);
      expect(entry.params.sampling).toEqual({ basis: c.basis, mode: c.draw.mode, population: 10_000, expectedCohort: 1000, drawn: c.draw.drawn });
      expect(verifyLedgerFile(guard.ledgerPath).valid).toBe(true);
    }
  });
});
