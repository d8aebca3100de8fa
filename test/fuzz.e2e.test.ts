/**
 * Issue 6 proof, hostile input: while two honest clients run a 3-round federation over real gRPC
 * on 127.0.0.1, thousands of hostile requests hit every RPC -- random bytes and mutated messages
 * below the schema, well-formed requests from strangers with forged sessions, and, from an
 * enrolled insider with a valid session, updates with NaN/Inf, huge shapes, wrong rounds and
 * nonces, bad offsets, oversized chunks, truncated and cancelled streams. Every hostile call
 * must end with a clear gRPC status (no hang, no INTERNAL/UNKNOWN from a handler), and the
 * honest run must complete with exactly the FedAvg result of the honest updates. It runs twice:
 * without request signatures (every hostile message reaches the handlers) and with the
 * per-request signature gate of a production coordinator (the insider signs properly; everyone
 * else sends missing, garbage, mismatched or replayed envelopes).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import type { LocalTrainer, RoundSummary } from '@fedlora/federation';
import { FederationCoordinator, FederationError, createStrategy, runClient } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import {
  GrpcConnection,
  MemoryNonceCache,
  RequestVerifier,
  createRequestSigner,
  SignatureFailureLimiter,
  encodePublicKey,
  federationService,
  generateIdentity,
  startFederationServer,
  type Identity,
  type RequestSigner,
  type RunningServer,
} from '@fedlora/transport-grpc';
import { contractViolation, sendAll, type CallOutcome, type HostileCall } from './fuzz/grpc-calls.js';
import { replays, signed, withHostileAuth } from './fuzz/hostile-auth.js';
import { Dice, insiderCases, rawCases, serviceShapes, strangerCases, type Session, type WirePlan } from './fuzz/hostile-cases.js';

const SERVICE = 'fedlora.v1.Federation';
const ROUNDS = 3;
const HONEST = ['honest-1', 'honest-2'];
const ENROLLED = new Set([...HONEST, 'mallory']);
const SIZE = 16 * 1024; // floats in tensor "a": 64 KiB, streamed in 16 KiB chunks

function initialAdapter(): NamedTensors {
  return new Map([
    ['a', { shape: [16, 1024], data: Float32Array.from({ length: SIZE }, (_, i) => (i % 97) / 97) }],
    ['b', { shape: [8, 4], data: new Float32Array(32) }],
  ]);
}

/** An honest trainer: a constant delta, but only once the fuzzer has hit the round it is in. */
function honestTrainer(value: number, numExamples: number, roundFuzzed: (round: number) => Promise<void>): LocalTrainer {
  return {
    numExamples,
    async train(plan, global) {
      await roundFuzzed(plan.round);
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
      return { delta, numExamples, trainLoss: value };
    },
  };
}

/** One well-formed unary call, signed when `signer` is given; also returns the metadata it carried. */
const unaryCall = <Res>(client: grpc.Client, method: string, req: object, signer?: RequestSigner): Promise<Res> => {
  const def = federationService()[method]!;
  const body = def.requestSerialize(req);
  const round = Number((req as { round?: number }).round ?? 0);
  const md = signer ? signer(`/${SERVICE}/${method}`, round, body) : new grpc.Metadata();
  lastMetadata = md;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(`/${SERVICE}/${method}`, (b: Buffer) => b, def.responseDeserialize as (b: Buffer) => Res, body, md, { deadline: new Date(Date.now() + 20_000) }, (err, res) =>
      err ? reject(err) : resolve(res!),
    ),
  );
};
let lastMetadata = new grpc.Metadata();

let server: RunningServer | undefined;
afterAll(async () => {
  await server?.close();
});

async function fuzzFederation(signing: boolean): Promise<void> {
    const rng = seededRandomBytes(`fuzz-identities-${signing}`);
    const identities = new Map<string, Identity>([...ENROLLED].map((n) => [n, generateIdentity(n, rng)]));
    const signerOf = (name: string): RequestSigner | undefined =>
      signing ? createRequestSigner({ federationId: 'fed-fuzz', identity: identities.get(name)!, random: seededRandomBytes(`nonces-${name}`) }) : undefined;
    const verifier = signing
      ? new RequestVerifier({
          federationId: 'fed-fuzz',
          identities: { getClient: (n) => (identities.has(n) ? { publicKey: encodePublicKey(identities.get(n)!.publicKey), status: 'enrolled' } : undefined) },
          nonces: new MemoryNonceCache(),
          // The insider's envelopes signed for another method fail their signature by design; the default
          // throttle would then refuse the insider's own polls (as it should in production, see
          // request-auth.test.ts). Here the insider must keep reaching the handlers, so the bucket is huge.
          failureLimiter: new SignatureFailureLimiter({ burst: 1e9 }),
        })
      : undefined;
    const coordinator = new FederationCoordinator({
      federationId: 'fed-fuzz',
      rounds: ROUNDS,
      minClients: 2,
      minAvailableClients: 3,
      roundDeadlineMs: 40_000,
      waitAfterMinimumMs: 300,
      localSteps: 1,
      learningRate: 0.1,
      batchSize: 1,
      strategy: createStrategy({ name: 'fedavg' }),
      initialAdapter: initialAdapter(),
      rng: seededRandomBytes('fuzz-coordinator'),
    });
    server = await startFederationServer(coordinator, {
      address: '127.0.0.1:0',
      chunkBytes: 16 * 1024,
      verifier,
      authorizeRegister: (name) => {
        if (!ENROLLED.has(name)) throw new FederationError('permission-denied', `client "${name}" is not enrolled in this federation`);
      },
    });
    const address = `127.0.0.1:${server.port}`;
    const run = coordinator.run();

    // The fuzzer's progress gates the honest trainers, so hostile traffic overlaps every round.
    const fuzzed = new Map<number, () => void>();
    const fuzzedDone = new Map<number, Promise<void>>();
    for (let r = 1; r <= ROUNDS; r++) fuzzedDone.set(r, new Promise<void>((resolve) => fuzzed.set(r, resolve)));
    const roundFuzzed = (round: number): Promise<void> => fuzzedDone.get(round) ?? Promise.resolve();

    const honest = [honestTrainer(1, 1, roundFuzzed), honestTrainer(3, 3, roundFuzzed)].map((t, i) => {
      const connection = new GrpcConnection({ address, federationId: 'fed-fuzz', signer: signerOf(HONEST[i]!) });
      return runClient({ name: HONEST[i]!, connection, trainer: t, pollMs: 200 }).finally(() => connection.close());
    });

    const raw = new grpc.Client(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 << 20 });
    const shapes = serviceShapes(federationService());
    const dice = new Dice(seededRandomBytes(`fuzz-cases-${signing}`));
    const mallory = signerOf('mallory');
    const outcomes: CallOutcome[] = [];
    try {
      const me = await unaryCall<Session & { federationId: string }>(raw, 'Register', { clientName: 'mallory', federationId: 'fed-fuzz', numExamples: 5 }, mallory);
      const session: Session = { clientId: me.clientId, sessionToken: me.sessionToken };
      const valid: Record<string, object[]> = {
        Register: [{ clientName: 'someone', federationId: 'fed-fuzz', numExamples: 3 }],
        GetTask: [{ ...session, waitMs: 0 }],
        DownloadAdapter: [{ ...session, round: 1 }],
        UploadUpdate: [{ header: { ...session, round: 1, nonce: 'n', numExamples: 1, trainLoss: 0, tensors: [{ name: 'a', shape: [16, 1024], dtype: 'float32' }] } }, { chunk: { round: 1, tensorName: 'a', offset: 0, totalBytes: 4 * SIZE, data: Buffer.alloc(64) } }],
        Decline: [{ ...session, round: 1, reason: 'budget' }],
        Heartbeat: [{ ...session, round: 1 }],
        GetStatus: [{}],
        UploadStatus: [{ ...session, round: 1, nonce: 'n', uploadId: 'fuzz-upload-id-0000' }],
        SecAggExchange: [{ ...session, round: 1, stage: 'advertise', payload: Buffer.alloc(8), nonce: 'n', reportJson: '' }],
      };

      for (let round = 1; round <= ROUNDS; round++) {
        // The insider learns the open round's plan like any client.
        let plan: WirePlan | undefined;
        const until = Date.now() + 30_000;
        while (!plan && Date.now() < until) {
          const task = await unaryCall<{ kind: string; plan: WirePlan }>(raw, 'GetTask', { ...session, waitMs: 1000 }, mallory);
          if (task.kind === 'TRAIN' && task.plan.round === round) plan = task.plan;
        }
        if (!plan) throw new Error(`the insider never saw round ${round} open`);
        const usedPoll = lastMetadata.clone(); // the envelope of the poll that was just accepted
        await unaryCall(raw, 'Heartbeat', { ...session, round }, mallory);
        // Behind the gate every call carries an envelope to check: half the volume keeps the file fast.
        const outsiders = [...rawCases(dice, shapes, valid, signing ? 55 : 110), ...strangerCases(dice, shapes, HONEST, signing ? 100 : 200)];
        const insider = insiderCases(dice, shapes, session, plan, signing ? 2 : 3);
        let cases: HostileCall[] = [...outsiders, ...insider];
        if (mallory) {
          // Replay the poll just made (accepted once), and sign the insider's requests so they pass the gate.
          const pollFrame = federationService().GetTask!.requestSerialize({ ...session, waitMs: 1000 });
          cases = [...withHostileAuth(dice, SERVICE, mallory, outsiders), ...signed(federationService(), SERVICE, mallory, insider), ...replays('GetTask', pollFrame, usedPoll, 20)];
        }
        // The coordinator holds one upload per client and round (#16 finding 4): a newer stream of the insider's
        // replaces the one before, so its uploads go one at a time, each reaching validation.
        const insiderLabels = new Set(insider.map((c) => c.label));
        const sequential = cases.filter((c) => c.method === 'UploadUpdate' && insiderLabels.has(c.label));
        outcomes.push(...(await sendAll(raw, SERVICE, cases.filter((c) => !sequential.includes(c)), 16, 15_000)));
        outcomes.push(...(await sendAll(raw, SERVICE, sequential, 1, 15_000)));
        fuzzed.get(round)!();
      }

      const history: RoundSummary[] = await run;
      await Promise.all(honest);

      // Every hostile call ended with a status that keeps the contract.
      const violations = outcomes.map(contractViolation).filter((v): v is string => v !== undefined);
      expect(violations.slice(0, 20), `${violations.length} of ${outcomes.length} hostile calls broke the contract`).toEqual([]);
      expect(outcomes.length).toBeGreaterThan(signing ? 1500 : 3000);
      const byMethod = new Map<string, number>();
      for (const o of outcomes) byMethod.set(o.call.method, (byMethod.get(o.call.method) ?? 0) + 1);
      expect([...byMethod.keys()].sort()).toEqual([...shapes.methods].sort());
      expect(Math.min(...byMethod.values())).toBeGreaterThan(signing ? 50 : 100);
      // The insider's hostile updates got past authentication and were refused by validation, for the right reason.
      const detailsOf = (label: string): string[] => outcomes.filter((o) => o.call.label === label).map((o) => o.details);
      expect(detailsOf('NaN values').length).toBeGreaterThan(0);
      expect(detailsOf('NaN values').every((d) => /non-finite/.test(d))).toBe(true);
      // Resumable uploads: hashes required and checked (a concurrent rep of the same case may find its stream superseded).
      const refusedFor = (label: string, why: RegExp): void => {
        const d = detailsOf(label);
        expect(d.length, label).toBeGreaterThan(0);
        expect(d.filter((x) => !why.test(x) && !/newer stream/.test(x)), label).toEqual([]);
      };
      refusedFor('resumable without chunk hashes', /lacks its sha256/);
      refusedFor('resumable with wrong chunk hashes', /fails its SHA-256 check/);
      refusedFor('resumable with a wrong tensor hash', /bytes received hash to [0-9a-f]{64}/);
      refusedFor('digest of 31 bytes', /must be a 32-byte SHA-256 digest, received 31 bytes/);
      refusedFor('malformed upload id', /uploadId must be 16-64 characters/);
      expect(detailsOf('huge shapes').every((d) => /layout does not match/.test(d))).toBe(true);
      if (signing) {
        expect(detailsOf('replayed signed request').length).toBe(ROUNDS * 20);
        expect(detailsOf('replayed signed request').every((d) => /already used/.test(d))).toBe(true);
      }

      // The honest federation completed every round with the two honest clients only...
      const completed = history.filter((h) => h.status === 'completed');
      expect(completed.map((h) => h.round)).toEqual([1, 2, 3]);
      for (const h of completed) expect(h.participantNames).toEqual(HONEST);
      // ...and nothing hostile was half-applied: each round moved the adapter by exactly (1*1 + 3*3) / 4.
      const a = coordinator.adapter.get('a')!.data;
      const b = coordinator.adapter.get('b')!.data;
      for (const i of [0, 1, 96, 4097, SIZE - 1]) expect(a[i]).toBeCloseTo((i % 97) / 97 + ROUNDS * 2.5, 4);
      expect([...b].every((x) => Math.abs(x - ROUNDS * 2.5) < 1e-4)).toBe(true);

      // And the server still answers.
      const status = await unaryCall<{ state: string }>(raw, 'GetStatus', {});
      expect(status.state).toBe('finished');
    } finally {
      raw.close();
      coordinator.stop();
      await server.close();
      server = undefined;
    }
}

describe('fuzzing every RPC while two honest clients federate (gRPC on 127.0.0.1)', () => {
  it('answers every hostile call with a clear status and completes the honest run with the exact FedAvg result', () => fuzzFederation(false), 80_000);
  it('does the same behind the per-request signature gate (insider signs; outsiders send garbage, mismatched and replayed envelopes)', () => fuzzFederation(true), 80_000);
});
