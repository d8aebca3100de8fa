import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PrivacyGuardedTrainer } from '@fedlora/client';
import { createFederationPrivacy } from '@fedlora/coordinator';
import type { CoordinatorConnection, LocalTrainer } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, inProcessConnection, runClient } from '@fedlora/federation';
import { ClientPrivacyGuard, generateLedgerKey, verifyLedgerFile } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { auditLedgers } from './audit-report.js';

const adapter = (): NamedTensors => new Map([['w', { shape: [2, 2], data: new Float32Array(4) }]]);
const trainer: LocalTrainer = {
  numExamples: 1,
  async train(_plan, global) {
    return { delta: new Map([...global].map(([k, t]) => [k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(0.01) }])), numExamples: 1, trainLoss: 1 };
  },
};

/** Three rounds of central DP-FedAvg in-process: the coordinator's privacy side and three institutions with budgets, as the apps build them. */
async function run(dir: string) {
  const coordKey = generateLedgerKey();
  const privacy = await createFederationPrivacy({
    config: { mode: 'central', clipNorm: 0.1, noiseMultiplier: 1, samplingRate: 1, secureAggregation: false },
    delta: 1e-5,
    dimension: 4,
    ledgerPath: join(dir, 'federation-ledger.jsonl'),
    signer: { writer: 'coordinator', secretKey: coordKey.secretKey },
    rng: seededRandomBytes('noise'),
  });
  const coordinator = new FederationCoordinator({
    federationId: 'anchored',
    rounds: 3,
    minClients: 3,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng: seededRandomBytes('coord'),
    aggregation: privacy.aggregation,
    planParts: () => privacy.planExtra(),
    onRoundEnd: async (s, _a, plan) => {
      await privacy.recordRound(s, plan, new Date(0).toISOString());
    },
  });
  const keys: Record<string, string> = { coordinator: coordKey.publicKey };
  const guards = await Promise.all(
    ['alpha', 'beta', 'gamma'].map(async (name) => {
      const key = generateLedgerKey();
      keys[name] = key.publicKey;
      return ClientPrivacyGuard.open({ ledgerPath: join(dir, `${name}-ledger.jsonl`), signer: { writer: name, secretKey: key.secretKey }, budget: { epsilon: 100, delta: 1e-5 }, unit: 'institution' });
    }),
  );
  const done = coordinator.run();
  await Promise.all(
    guards.map((g, i) =>
      runClient({ name: ['alpha', 'beta', 'gamma'][i]!, connection: inProcessConnection(coordinator), trainer: new PrivacyGuardedTrainer(trainer, g, () => new Date(0), { minMode: 'central' }), pollMs: 50 }),
    ),
  );
  const history = await done;
  return { history, keys, guards, fedPath: privacy.ledgerPath, paths: [privacy.ledgerPath, ...guards.map((g) => g.ledgerPath)] };
}

describe('a federation whose ledger head is anchored in the institutions\' ledgers (issue 16, finding 9)', () => {
  it('plans carry the head, institutions record it with the attempt, and the audit vouches for the prefix', async () => {
    const { history, keys, paths, fedPath } = await run(mkdtempSync(join(tmpdir(), 'anchored-')));
    expect(history.map((h) => h.status)).toEqual(['completed', 'completed', 'completed']);
    const client = verifyLedgerFile(paths[1]!).parsed;
    expect(client.map((e) => e.federationHead?.entries)).toEqual([0, 1, 2]);
    const fed = verifyLedgerFile(fedPath);
    expect(client[2]!.federationHead!.hash).toBe(fed.lineHashes[1]);
    expect(client.map((e) => e.attempt)).toEqual(fed.parsed.map((e) => e.attempt));
    const report = auditLedgers(paths, { trustedKeys: keys });
    expect(report.verdict).toBe('VALID');
    expect(report.anchoredHead).toEqual({ entries: 2, by: ['alpha', 'beta', 'gamma'] });

    // Cut to two lines (round 3's entry gone): every institution's release of round 2 has no federation entry.
    const lines = readFileSync(fedPath, 'utf8').trimEnd().split('\n');
    writeFileSync(fedPath, `${lines.slice(0, 2).join('\n')}\n`);
    const cut = auditLedgers(paths, { trustedKeys: keys });
    expect(cut.verdict).toBe('INVALID');
    expect(cut.problems.filter((p) => /records a release in round 3 \(attempt [0-9a-f]{12}…\) that .* has no entry for/.test(p.message))).toHaveLength(3);
  });

  it('an institution refuses a plan whose federation ledger head went back, and records nothing released', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anchored-'));
    const { guards, fedPath } = await run(dir);
    const guard = guards[0]!;
    const before = verifyLedgerFile(guard.ledgerPath).entries;
    // A coordinator that truncated its ledger announces an older head in its next plan.
    const hostile: CoordinatorConnection = {
      register: async () => ({ clientId: 'alpha' }),
      getTask: (() => {
        let served = false;
        return async () => {
          if (served) return { kind: 'finished' as const };
          served = true;
          const hash = verifyLedgerFile(fedPath).lineHashes[0]!;
          return { kind: 'train' as const, plan: { round: 4, attempt: 1, adapterSha256: '', tensors: [{ name: 'w', shape: [2, 2] }], localSteps: 1, learningRate: 0.1, batchSize: 1, deadlineUnixMs: 0, nonce: 'x', privacy: { mode: 'central' as const, clipNorm: 0.1, noiseMultiplier: 1, samplingRate: 1, secureAggregation: false, delta: 1e-5, dimension: 4 }, ledgerHead: { entries: 1, hash } } };
        };
      })(),
      downloadAdapter: async () => adapter(),
      uploadUpdate: async () => {
        throw new Error('no update may be sent');
      },
      decline: async () => undefined,
      heartbeat: async () => ({ roundOpen: true }),
      secAggExchange: async () => ({ kind: 'aborted', stage: '', payload: new Uint8Array(0) }),
      close() {},
    };
    const r = await runClient({ name: 'alpha', connection: hostile, trainer: new PrivacyGuardedTrainer(trainer, guard, () => new Date(0), { minMode: 'central' }), pollMs: 50 });
    expect(r.stopped).toMatch(/round 4: the federation ledger went back from 2 entries \(recorded here\) to 1: it was truncated or replaced/);
    const after = verifyLedgerFile(guard.ledgerPath);
    expect(after.entries).toBe(before + 1);
    expect(after.parsed[after.parsed.length - 1]).toMatchObject({ kind: 'refused', round: 4 });
    expect(after.parsed[after.parsed.length - 1]!.federationHead).toBeUndefined();
  });
});
