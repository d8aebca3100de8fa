import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { ClientUpdate, RoundAggregationFactory, RoundPlan } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, weightedFedAvg } from '@fedlora/federation';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import { chunksToSend, tensorDigests } from './resumable-upload.js';
import { chunkToProto, headerToProto } from './serde.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
import { tcpProxy } from './testing/tcp-proxy.js';
import { encodePublicKey, generateIdentity } from './security/identity.js';
import { MemoryNonceCache } from './security/nonce-cache.js';
import { createRequestSigner } from './security/request-signer.js';
import { RequestVerifier } from './security/request-verifier.js';

// 256K floats = 1 MiB in 64 KiB chunks: 16 chunks for the big tensor.
const N = 262_144;
const CHUNK = 64 * 1024;
const UPLOAD_ID = 'resumable-test-upload-1';

const layoutOf = (t: NamedTensors) => [...t].map(([name, v]) => ({ name, shape: v.shape }));
const initial = (): NamedTensors =>
  new Map([
    ['big', { shape: [N], data: new Float32Array(N) }],
    ['small', { shape: [2, 2], data: new Float32Array(4) }],
  ]);
const update = (): NamedTensors =>
  new Map([
    ['big', { shape: [N], data: Float32Array.from({ length: N }, (_, i) => Math.sin(i) / (1 + (i % 13))) }],
    ['small', { shape: [2, 2], data: new Float32Array([1, -2, 3, -4]) }],
  ]);
const bytesOf = (t: NamedTensors) => Buffer.concat([...t.values()].map((v) => Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength)));

let server: RunningServer | undefined;
const closers: Array<() => void> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await server?.close();
  server = undefined;
});

/** A coordinator with one round of `minClients` (default 1), recording every update the round receives whole. */
async function setup(maxUploadBytes?: number, extra: { minClients?: number; verifier?: RequestVerifier; refused?: string[] } = {}) {
  const received: ClientUpdate[] = [];
  const recording: RoundAggregationFactory = (plan) => {
    const inner = weightedFedAvg(plan);
    return { add: (id, u) => (received.push(u), inner.add(id, u)), finalize: () => inner.finalize() };
  };
  const coordinator = new FederationCoordinator({
    federationId: 'fed-upload',
    rounds: 1,
    minClients: extra.minClients ?? 1,
    roundDeadlineMs: 30_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: initial(),
    aggregation: recording,
    rng: seededRandomBytes('resumable-upload'),
  });
  const events: Array<{ event: string; offset: number }> = [];
  const bytesIn = { n: 0 };
  const peak = { heldBytes: 0 };
  server = await startFederationServer(coordinator, {
    address: '127.0.0.1:0',
    maxUploadBytes,
    verifier: extra.verifier,
    onRefused: (r) => extra.refused?.push(`${r.method}: ${r.reason}: ${r.details}`),
    onUploadEvent: (e) => events.push(e),
    onBytes: (d, n) => {
      if (d === 'in') bytesIn.n += n;
      peak.heldBytes = Math.max(peak.heldBytes, server!.uploads.heldBytes);
    },
  });
  const run = coordinator.run();
  return { coordinator, received, events, run, bytesIn, peak, address: `127.0.0.1:${server.port}` };
}

/** Registers `name` and waits for its training task. */
async function join(conn: GrpcConnection, name: string): Promise<RoundPlan> {
  await conn.register(name, 1);
  for (;;) {
    const t = await conn.getTask(2000);
    if (t.kind === 'train') return t.plan;
  }
}

function clientUpdate(plan: RoundPlan, clientId: string, delta = update()): ClientUpdate {
  return { header: { clientId, round: plan.round, nonce: plan.nonce, numExamples: 3, trainLoss: 0.5, tensors: layoutOf(delta), metrics: {} }, delta };
}

/**
 * Cuts the first `cuts` UploadUpdate streams after `afterChunks` chunks, as a broken connection
 * would (UNAVAILABLE): the next message is held back until `ready()` says the coordinator has
 * processed what was sent (so the cut lands mid-upload, not before the bytes left the socket).
 */
function cutUploads(afterChunks: number, cuts: number, ready: () => boolean = () => true): grpc.Interceptor {
  let left = cuts;
  return (options, nextCall) => {
    if (!String(options.method_definition.path).endsWith('/UploadUpdate') || left <= 0) return new grpc.InterceptingCall(nextCall(options));
    left--;
    let sent = 0;
    let holding = false;
    const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
      sendMessage(message, next) {
        if (holding) return; // nothing gets past a dead connection
        if (sent++ !== afterChunks + 1) return next(message);
        holding = true;
        const until = Date.now() + 10_000;
        const cut = () => (ready() || Date.now() > until ? call.cancelWithStatus(grpc.status.UNAVAILABLE, 'connection lost (test cut)') : setTimeout(cut, 5));
        cut();
      },
      halfClose(next) {
        if (!holding) next();
      },
    });
    return call;
  };
}

type Raw = Record<string, (...a: unknown[]) => unknown>;

/** Sends raw upload messages on one stream; resolves with the error status (null when accepted). */
function rawUpload(address: string, messages: object[]): Promise<grpc.ServiceError | null> {
  const client = new (federationClientCtor())(address, grpc.credentials.createInsecure());
  closers.push(() => client.close());
  return new Promise((resolve) => {
    const call = (client as unknown as Raw).UploadUpdate!((e: grpc.ServiceError | null) => resolve(e)) as grpc.ClientWritableStream<object>;
    for (const m of messages) call.write(m);
    call.end();
  });
}

function rawStatus(address: string, req: object): Promise<{ err: grpc.ServiceError | null; res?: { state: string; receivedBytes: number } }> {
  const client = new (federationClientCtor())(address, grpc.credentials.createInsecure());
  closers.push(() => client.close());
  return new Promise((resolve) => (client as unknown as Raw).UploadStatus!(req, (err: grpc.ServiceError | null, res: { state: string; receivedBytes: number }) => resolve({ err, res })));
}

function hashedMessages(plan: RoundPlan, token: string, u: ClientUpdate) {
  const header = { header: headerToProto(u.header, token, UPLOAD_ID) };
  const chunks = [...chunksToSend(u.delta, tensorDigests(u.delta), { state: 'not-found' }, CHUNK)].map((c) => ({ chunk: chunkToProto(plan.round, c) }));
  return { header, chunks };
}

/** The session token a GrpcConnection holds (raw tests speak for the same client). */
const tokenOf = (conn: GrpcConnection): string => (conn as unknown as { token: string }).token;

describe('resumable uploads over gRPC on 127.0.0.1', () => {
  it('resumes a stream cut after 5 chunks at the acknowledged offset; the round gets the update bit for bit', async () => {
    const { received, events, run, address, bytesIn } = await setup();
    const retries: Array<{ attempt: number; reason: string }> = [];
    // First stream: cut once 5 chunks are in; second stream (resumed at 5): cut once 5 more are in.
    const cut = cutUploads(5, 2, () => bytesIn.n >= (retries.length + 1) * 5 * CHUNK);
    const conn = new GrpcConnection({ address, chunkBytes: CHUNK, interceptors: [cut], uploadRetry: { initialBackoffMs: 20 }, onUploadRetry: (r) => retries.push(r) });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const u = clientUpdate(plan, 'inst-1');
    await conn.uploadUpdate(u);

    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    expect(retries[0]!.reason).toMatch(/connection lost/);
    // Each resumed stream started where the coordinator's verified prefix ended, not at 0.
    const resumed = events.filter((e) => e.event === 'upload.resumed');
    expect(resumed.map((e) => e.offset)).toEqual([5 * CHUNK, 10 * CHUNK]);
    expect(bytesIn.n).toBe(bytesOf(u.delta).byteLength); // nothing was sent twice
    expect(received.length).toBe(1);
    expect(bytesOf(received[0]!.delta).equals(bytesOf(u.delta))).toBe(true);
    expect((await run)[0]!.status).toBe('completed');
    expect(server!.uploads.heldBytes).toBe(0);
  });

  it('resumes after the TCP connection dies mid-upload (a real network cut, not a cancel)', async () => {
    const { received, events, run, bytesIn } = await setup();
    // Kills the first connection once 600 KiB went up it: a network failure mid-upload.
    const proxy = await tcpProxy(server!.port, { up: (d, { conn, before }) => (conn === 0 && before + d.length > 600 * 1024 ? 'cut' : d) });
    closers.push(() => proxy.close());
    const retries: string[] = [];
    const conn = new GrpcConnection({ address: `127.0.0.1:${proxy.port}`, chunkBytes: CHUNK, uploadRetry: { initialBackoffMs: 50 }, onUploadRetry: (r) => retries.push(r.reason) });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    // One HTTP/2 connection carries every call: it dies once 600 KiB went up, mid-upload.
    const u = clientUpdate(plan, 'inst-1');
    await conn.uploadUpdate(u);
    expect(proxy.cuts()).toBe(1);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(received.length).toBe(1);
    expect(bytesOf(received[0]!.delta).equals(bytesOf(u.delta))).toBe(true);
    const resumed = events.filter((e) => e.event === 'upload.resumed');
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(resumed[0]!.offset).toBeGreaterThan(0);
    expect(bytesIn.n).toBeLessThan(2 * bytesOf(u.delta).byteLength);
    expect((await run)[0]!.status).toBe('completed');
  });

  it('resumes behind the per-request signature gate (UploadStatus and every resumed stream are signed)', async () => {
    const random = seededRandomBytes('resumable-signed');
    const alice = generateIdentity('alice', random);
    const verifier = new RequestVerifier({ federationId: 'fed-upload', identities: { getClient: (n) => (n === 'alice' ? { publicKey: encodePublicKey(alice.publicKey), status: 'enrolled' } : undefined) }, nonces: new MemoryNonceCache() });
    const refused: string[] = [];
    const { received, events, bytesIn, address } = await setup(undefined, { verifier, refused });
    const retries: string[] = [];
    const cut = cutUploads(4, 1, () => bytesIn.n >= 4 * CHUNK);
    const signer = createRequestSigner({ federationId: 'fed-upload', identity: alice, random });
    const conn = new GrpcConnection({ address, federationId: 'fed-upload', chunkBytes: CHUNK, signer, interceptors: [cut], uploadRetry: { initialBackoffMs: 20 }, onUploadRetry: (r) => retries.push(r.reason) });
    closers.push(() => conn.close());
    const plan = await join(conn, 'alice');
    const u = clientUpdate(plan, 'alice');
    await conn.uploadUpdate(u);
    expect(retries).toHaveLength(1);
    expect(events.filter((e) => e.event === 'upload.resumed').map((e) => e.offset)).toEqual([4 * CHUNK]);
    expect(bytesOf(received[0]!.delta).equals(bytesOf(u.delta))).toBe(true);
    expect(refused).toEqual([]);
  });

  it('keeps upload memory under the bound however many clients upload at once (they queue and resume)', async () => {
    const clients = 6;
    const size = 4 * (N + 4);
    const { received, peak, run, address } = await setup(2 * size, { minClients: clients });
    const conns = Array.from({ length: clients }, () => new GrpcConnection({ address, chunkBytes: CHUNK, uploadRetry: { retries: 30, initialBackoffMs: 20, maxBackoffMs: 200 } }));
    for (const c of conns) closers.push(() => c.close());
    const plans = await Promise.all(conns.map((c, i) => c.register(`inst-${i}`, 1).then(() => c)).map(async (p, i) => join(await p, `inst-${i}`)));
    const updates = plans.map((p, i) => {
      const u = clientUpdate(p, `inst-${i}`);
      u.delta.get('small')!.data[0] = i; // each client's update is its own
      return u;
    });
    await Promise.all(updates.map((u, i) => conns[i]!.uploadUpdate(u)));
    expect(received).toHaveLength(clients);
    for (const u of updates) expect(bytesOf(received.find((r) => r.header.clientId === u.header.clientId)!.delta).equals(bytesOf(u.delta))).toBe(true);
    expect(peak.heldBytes).toBeGreaterThan(0);
    expect(peak.heldBytes).toBeLessThanOrEqual(2 * size);
    expect((await run)[0]!.participants).toBe(clients);
  });

  it('refuses a corrupted chunk with DATA_LOSS naming tensor and offset, keeping the verified prefix', async () => {
    const { received, address } = await setup();
    const conn = new GrpcConnection({ address });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const u = clientUpdate(plan, 'inst-1');
    const { header, chunks } = hashedMessages(plan, tokenOf(conn), u);
    const bad = structuredClone(chunks[3]!) as { chunk: { data: Uint8Array } };
    bad.chunk.data[100] ^= 0xff;
    const err = await rawUpload(address, [header, ...chunks.slice(0, 3), bad]);
    expect(err?.code).toBe(grpc.status.DATA_LOSS);
    expect(err?.details).toMatch(/tensor "big": chunk at offset 196608 \(65536 bytes\) fails its SHA-256 check/);
    const status = await rawStatus(address, { clientId: 'inst-1', sessionToken: tokenOf(conn), round: plan.round, nonce: plan.nonce, uploadId: UPLOAD_ID });
    expect(status.res).toMatchObject({ state: 'IN_PROGRESS', receivedBytes: 3 * CHUNK });
    expect(received.length).toBe(0);
    // Resuming with the good bytes completes the upload.
    expect(await rawUpload(address, [header, ...chunks.slice(3)])).toBeNull();
    expect(bytesOf(received[0]!.delta).equals(bytesOf(u.delta))).toBe(true);
  });

  it('does not count a replayed chunk twice', async () => {
    const { received, address, coordinator, run } = await setup();
    const conn = new GrpcConnection({ address });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const u = clientUpdate(plan, 'inst-1');
    const { header, chunks } = hashedMessages(plan, tokenOf(conn), u);
    expect(await rawUpload(address, [header, chunks[0]!, chunks[1]!, chunks[0]!, chunks[1]!, ...chunks.slice(1)])).toBeNull();
    expect(received.length).toBe(1);
    expect(bytesOf(received[0]!.delta).equals(bytesOf(u.delta))).toBe(true);
    await run;
    // The new global adapter moved by exactly one copy of the update (FedAvg over one client).
    expect(Array.from(coordinator.adapter.get('small')!.data)).toEqual([1, -2, 3, -4]);
  });

  it('answers a resend of a delivered upload as accepted, and refuses a resume once the round is over', async () => {
    const { received, address, run } = await setup();
    const conn = new GrpcConnection({ address });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const u = clientUpdate(plan, 'inst-1');
    const { header, chunks } = hashedMessages(plan, tokenOf(conn), u);
    const half = chunks.slice(0, 8);
    const partial = await rawUpload(address, [header, ...half]);
    expect(partial?.code).toBe(grpc.status.INVALID_ARGUMENT); // ended early: kept for a resume
    expect(partial?.details).toMatch(/has 524288 of 1048576 bytes/);
    expect(await rawUpload(address, [header, ...chunks.slice(8)])).toBeNull();
    await run; // the round completed with this update
    expect(received.length).toBe(1);
    const late = await rawUpload(address, [header, ...chunks.slice(8)]);
    expect(late?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(late?.details).toMatch(/round 1 is (not open|closed)/);
    const status = await rawStatus(address, { clientId: 'inst-1', sessionToken: tokenOf(conn), round: plan.round, nonce: plan.nonce, uploadId: UPLOAD_ID });
    expect(status.err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(server!.uploads.size).toBe(0);
  });

  it('gives up after the configured retries with an error that says what happened', async () => {
    const { received, address } = await setup();
    const conn = new GrpcConnection({ address, chunkBytes: CHUNK, interceptors: [cutUploads(2, 100)], uploadRetry: { retries: 2, initialBackoffMs: 10 } });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const err = await conn.uploadUpdate(clientUpdate(plan, 'inst-1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/upload of the round 1 update failed after 3 attempts \(last: connection lost \(test cut\)\)/) });
    expect(received.length).toBe(0);
  });

  it('refuses a new upload beyond the memory bound with RESOURCE_EXHAUSTED', async () => {
    const { address } = await setup(512 * 1024);
    const conn = new GrpcConnection({ address, uploadRetry: { retries: 0 } });
    closers.push(() => conn.close());
    const plan = await join(conn, 'inst-1');
    const err = await conn.uploadUpdate(clientUpdate(plan, 'inst-1')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/exceeds the coordinator's upload memory bound \(524288 bytes\)/) });
  });

  it('hashes the chunks it sends with SHA-256 of their bytes', () => {
    const u = update();
    const [c] = [...chunksToSend(u, tensorDigests(u), { state: 'not-found' }, CHUNK)];
    expect(Buffer.from(c!.sha256!).toString('hex')).toBe(createHash('sha256').update(c!.data).digest('hex'));
  });
});
