/**
 * #16 finding 4 on real gRPC (127.0.0.1): one institution must not be able to take the
 * coordinator's upload memory. Before the fix, four header-only one-shot streams of one client
 * held 1,048,576 of 1,048,576 bytes, the honest upload got RESOURCE_EXHAUSTED, a client outside the
 * cohort could reserve too, nothing timed an idle stream out, and the reservations outlived the
 * aborted round. No timing assertions: every wait is for an event, with a generous bound.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RoundPlan } from '@fedlora/federation';
import { FederationCoordinator, createStrategy } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import { headerToProto } from './serde.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';

const FLOATS = 65_536; // 256 KiB per update
const UPDATE_BYTES = FLOATS * 4;

let server: RunningServer | undefined;
const conns: GrpcConnection[] = [];
const rawClients: grpc.Client[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  for (const c of rawClients.splice(0)) c.close();
  await server?.close();
  server = undefined;
});

function coordinator(roundDeadlineMs: number): FederationCoordinator {
  return new FederationCoordinator({
    federationId: 'fed-upload',
    rounds: 1,
    minClients: 2,
    maxAttemptsPerRound: 1,
    roundDeadlineMs,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [FLOATS], data: new Float32Array(FLOATS) }]]),
    rng: seededRandomBytes('upload-exhaustion'),
  });
}

async function join(name: string): Promise<{ conn: GrpcConnection; token: string }> {
  const conn = new GrpcConnection({ address: `127.0.0.1:${server!.port}`, callTimeoutMs: 10_000, uploadRetry: { retries: 0 } });
  conns.push(conn);
  await conn.register(name, 1);
  return { conn, token: (conn as unknown as { token: string }).token };
}

async function planOf(conn: GrpcConnection): Promise<RoundPlan> {
  for (;;) {
    const t = await conn.getTask(5000);
    if (t.kind === 'train') return t.plan;
  }
}

/** Opens an UploadUpdate stream that sends its header and then nothing; resolves with how the server ended it. */
function headerOnly(client: string, token: string, plan: RoundPlan, halfClose = false): Promise<{ code: number; details: string }> {
  const raw = new (federationClientCtor())(`127.0.0.1:${server!.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, (...a: unknown[]) => grpc.ClientWritableStream<object>>;
  rawClients.push(raw);
  return new Promise((resolve) => {
    const call = raw.UploadUpdate!.call(raw, new grpc.Metadata(), { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null) => resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' }));
    const header = { clientId: client, round: plan.round, nonce: plan.nonce, numExamples: 1, trainLoss: 0, tensors: plan.tensors, metrics: {} };
    call.write({ header: headerToProto(header, token) });
    if (halfClose) call.end();
  });
}

async function until(what: string, cond: () => boolean, limitMs = 20_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function update(plan: RoundPlan, client: string): { header: { clientId: string; round: number; nonce: string; numExamples: number; trainLoss: number; tensors: RoundPlan['tensors']; metrics: Record<string, number> }; delta: NamedTensors } {
  return {
    header: { clientId: client, round: plan.round, nonce: plan.nonce, numExamples: 1, trainLoss: 0.5, tensors: plan.tensors, metrics: {} },
    delta: new Map([['w', { shape: [FLOATS], data: new Float32Array(FLOATS).fill(0.25) }]]),
  };
}

describe('upload memory under a hostile institution (gRPC on 127.0.0.1)', () => {
  it('four header-only streams of one client hold one update; the honest upload lands; outsiders reserve nothing; all is freed when the round aborts', async () => {
    const coord = coordinator(12_000);
    server = await startFederationServer(coord, { address: '127.0.0.1:0', maxUploadBytes: 4 * UPDATE_BYTES });
    const run = coord.run().catch((err: unknown) => err);
    const honest = await join('honest');
    const mallory = await join('mallory');
    const plan = await planOf(mallory.conn);

    const endings: Array<{ code: number; details: string }> = [];
    for (let i = 0; i < 4; i++) void headerOnly('mallory', mallory.token, plan).then((e) => endings.push(e));
    // Each newer stream of mallory's replaces the older one, which the coordinator ends.
    await until('three of mallory\'s streams ended', () => endings.length >= 3 || server!.uploads.heldBytes >= 4 * UPDATE_BYTES);
    expect(endings.map((e) => e.code)).toEqual([grpc.status.FAILED_PRECONDITION, grpc.status.FAILED_PRECONDITION, grpc.status.FAILED_PRECONDITION]);
    expect(endings[0]!.details).toMatch(/newer upload stream of client mallory for round 1 replaced this one/);
    expect(server.uploads.heldBytes).toBe(UPDATE_BYTES);

    // A client that registered after the round opened is outside its cohort: refused before any reservation.
    const late = await join('late');
    const outsider = await headerOnly('late', late.token, plan, true);
    expect(outsider).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'client late is not in the cohort of round 1' });
    expect(server.uploads.heldBytes).toBe(UPDATE_BYTES);

    // The honest institution's upload fits and is accepted.
    await expect(honest.conn.uploadUpdate(update(plan, 'honest'))).resolves.toBeUndefined();

    // mallory never completes: at the deadline the round aborts, its stream is ended and every byte freed.
    await until('the round aborted and the uploads were freed', () => endings.length === 4 && server!.uploads.heldBytes === 0, 40_000);
    expect(endings[3]).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringMatching(/round 1 closed .* its buffers were freed/) });
    expect(coord.rounds.map((r) => [r.status, r.participants])).toEqual([['aborted', 1]]);
    coord.stop();
    await run;
  }, 90_000);

  it('ends a header-only stream that stays idle, and frees what it held', async () => {
    const coord = coordinator(60_000);
    server = await startFederationServer(coord, { address: '127.0.0.1:0', uploadIdleMs: 300 });
    const run = coord.run().catch((err: unknown) => err);
    await join('honest');
    const mallory = await join('mallory');
    const plan = await planOf(mallory.conn);
    const ended = await headerOnly('mallory', mallory.token, plan);
    expect(ended).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, details: 'no upload message for 300 ms: the stream was closed and its buffers freed; upload again' });
    expect(server.uploads.heldBytes).toBe(0);
    coord.stop();
    await run;
  }, 60_000);
});
