import { afterEach, describe, expect, it } from 'vitest';
import type { ClientMsg } from '@fedlora/secagg';
import { encodeMessage, generateIdentity, parseMessage } from '@fedlora/secagg';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { CoordinatorConnection, LocalTrainer, SecAggExchange } from '@fedlora/federation';
import { FederationCoordinator, SECURE_EVAL_WORD_COUNT, createStrategy, runClient } from '@fedlora/federation';
import { GrpcConnection } from './client.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';

/**
 * #16 finding 6 over real gRPC on 127.0.0.1: one malicious cohort member (partial masked upload
 * then silence; garbage share ciphertexts; a false receipt; a bad Shamir share) does not abort the secure round.
 * The round completes in its first attempt with the four honest institutions, their exact mean,
 * and the culprit named in the round summary. Before the fix each of these aborted the attempt.
 */

// 70,000 coordinates -> a padded dimension of 131,072 words: two masked-input chunks per client.
const D = 70_000;
const NAMES = ['inst-1', 'inst-2', 'inst-3', 'inst-4', 'inst-5'];
const MALICIOUS = 'inst-3';
const rng = seededRandomBytes('secure-malicious-member');
const identities = new Map(NAMES.map((n) => [n, generateIdentity(rng)]));
const members = new Map([...identities].map(([n, id]) => [n, id.publicKey]));

function adapter(): NamedTensors {
  return new Map([['w', { shape: [D], data: new Float32Array(D) }]]);
}

function trainer(value: number): LocalTrainer {
  return {
    numExamples: 1,
    async train(_plan, global) {
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
      return { delta, numExamples: 1, trainLoss: value };
    },
  };
}

/** Rewrites or swallows the malicious client's SecAgg+ messages (null: go silent from then on; 'swallow': drop this message but keep polling). */
type Tamper = (stage: string, m: ClientMsg) => ClientMsg | null | 'swallow';

function tampering(conn: GrpcConnection, tamper: Tamper): CoordinatorConnection {
  let silent = false;
  const exchange: SecAggExchange = async (round, nonce, stage, payload, report) => {
    if (silent) return new Promise(() => {}); // vanished: never answers again
    if (payload.length > 0) {
      const m = tamper(stage, parseMessage(payload) as ClientMsg);
      if (m === null) {
        silent = true;
        return new Promise(() => {});
      }
      if (m === 'swallow') return { kind: 'wait', stage, payload: new Uint8Array(0) };
      payload = encodeMessage(m);
    }
    return conn.secAggExchange(round, nonce, stage, payload, report);
  };
  return {
    register: (name, n) => conn.register(name, n),
    getTask: (waitMs) => conn.getTask(waitMs),
    downloadAdapter: (round) => conn.downloadAdapter(round),
    uploadUpdate: (update) => conn.uploadUpdate(update),
    decline: (round, reason) => conn.decline(round, reason),
    heartbeat: (round) => (silent ? new Promise(() => {}) : conn.heartbeat(round)),
    secAggExchange: exchange,
    close: () => conn.close(),
  };
}

let server: RunningServer | undefined;
const stops: AbortController[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) s.abort();
  await server?.close();
  server = undefined;
});

async function secureRoundWith(tamper: Tamper, roundDeadlineMs = 120_000) {
  const coord = new FederationCoordinator({
    federationId: 'fed-malicious',
    rounds: 1,
    minClients: 3,
    minAvailableClients: NAMES.length,
    maxAttemptsPerRound: 1,
    roundDeadlineMs,
    localSteps: 1,
    learningRate: 0,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng,
    // Full SecAgg on 5 (k = 4, t = 3). A silent client is noticed after 10 s without heartbeat or message (honest ones are never that quiet, even on a loaded machine).
    secureAggregation: { identityOf: (n) => identities.get(n)?.publicKey, clipNorm: 100, stageTimeoutMs: 20_000, livenessMs: 10_000, rng, k: 4, t: 3 },
  });
  server = await startFederationServer(coord, { address: '127.0.0.1:0' });
  const address = `127.0.0.1:${server.port}`;
  const run = coord.run();
  const stop = new AbortController();
  stops.push(stop);
  const conns = NAMES.map(() => new GrpcConnection({ address, federationId: 'fed-malicious' }));
  NAMES.forEach((name, i) => {
    const connection = name === MALICIOUS ? tampering(conns[i]!, tamper) : conns[i]!;
    void runClient({ name, connection, trainer: trainer(0.01 * (i + 1)), pollMs: 100, heartbeatMs: 100, signal: stop.signal, secure: { identitySecretKey: identities.get(name)!.secretKey, members, rng } })
      .catch(() => undefined)
      .finally(() => conns[i]!.close());
  });
  const [h] = await run;
  return { h: h!, coord };
}

function expectHonestMean(h: Awaited<ReturnType<typeof secureRoundWith>>['h'], coord: FederationCoordinator): void {
  const honest = NAMES.filter((n) => n !== MALICIOUS);
  expect([h.round, h.attempt, h.status]).toEqual([1, 1, 'completed']);
  expect(h.participantNames).toEqual(honest);
  const mean = honest.reduce((a, n) => a + 0.01 * Number(n.slice(5)), 0) / honest.length;
  const w = coord.adapter.get('w')!.data;
  for (const i of [0, 1, D / 2, D - 1]) expect(Math.abs(w[i]! - mean)).toBeLessThan(1e-3);
}

describe('a malicious member cannot abort a secure round (gRPC loopback)', () => {
  it('partial masked upload then silence: the uploader is dropped, the honest four finish', async () => {
    const { h, coord } = await secureRoundWith((stage, m) => (stage === 'collect' && m.type === 'chunk' && m.offset > 0 ? null : m));
    expectHonestMean(h, coord);
    expect(h.misbehaved).toEqual([{ client: MALICIOUS, reason: expect.stringContaining(`stopped mid-upload (65536 of ${131072 + SECURE_EVAL_WORD_COUNT} words)`) }]);
  }, 120_000);

  it('partial masked upload then polling forever: judged by upload progress, dropped after the liveness window', async () => {
    // Before the fix its polls kept it "active", so collection waited for the round deadline and the attempt aborted.
    const { h, coord } = await secureRoundWith((stage, m) => (stage === 'collect' && m.type === 'chunk' && m.offset > 0 ? 'swallow' : m), 60_000);
    expectHonestMean(h, coord);
    expect(h.misbehaved).toEqual([{ client: MALICIOUS, reason: expect.stringMatching(/stopped mid-upload/) }]);
  }, 120_000);

  it('garbage share ciphertexts: the sender drops out, no receiver aborts', async () => {
    const { h, coord } = await secureRoundWith((_stage, m) =>
      m.type === 'share' ? { ...m, shares: m.shares.map((s) => ({ ...s, ct: Uint8Array.from(s.ct, (b, i) => (i >= 24 ? b ^ 0x33 : b)) })) } : m,
    );
    expectHonestMean(h, coord);
    expect(h.misbehaved).toEqual([{ client: MALICIOUS, reason: expect.stringMatching(/share ciphertext\(s\) to client\(s\) inst-1, inst-2, inst-4, inst-5 did not open/) }]);
  }, 120_000);

  it('a receipt falsely rejecting every neighbour: the liar is removed, not the honest four', async () => {
    const { h, coord } = await secureRoundWith((_stage, m) => (m.type === 'receipt' ? { ...m, rejected: [1, 2, 4, 5] } : m));
    expectHonestMean(h, coord);
    expect(h.misbehaved).toEqual([{ client: MALICIOUS, reason: expect.stringMatching(/reported the shares of client\(s\) inst-1, inst-2, inst-4, inst-5 as not opening/) }]);
  }, 120_000);

  it('a bad Shamir share: reconstruction finds an honest subset, the sum is exact, the revealer is named', async () => {
    const { h, coord } = await secureRoundWith((_stage, m) => {
      if (m.type !== 'unmask-shares') return m;
      const flip = (s: { of: number; y: Uint8Array }) => ({ ...s, y: Uint8Array.from(s.y, (b, i) => (i === s.y.length - 1 ? b ^ 1 : b)) });
      return { ...m, bShares: m.bShares.map(flip) };
    });
    // The malicious member uploaded its input, so its update is in the sum: the mean is over all five.
    expect([h.attempt, h.status]).toEqual([1, 'completed']);
    expect(h.participantNames).toEqual(NAMES);
    const mean = NAMES.reduce((a, n) => a + 0.01 * Number(n.slice(5)), 0) / NAMES.length;
    expect(Math.abs(coord.adapter.get('w')!.data[7]! - mean)).toBeLessThan(1e-3);
    expect(h.misbehaved?.map((m) => m.client)).toEqual([MALICIOUS]);
    expect(h.misbehaved?.[0]?.reason).toMatch(/revealed a share of client inst-\d inconsistent with client inst-\d's commitment/);
  }, 120_000);
});
