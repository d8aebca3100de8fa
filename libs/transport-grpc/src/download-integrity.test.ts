import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, sha256Named } from '@fedlora/tensor';
import { FederationCoordinator, FederationError, createStrategy } from '@fedlora/federation';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
import { tcpProxy } from './testing/tcp-proxy.js';
import type { PbTensorChunk } from './wire-types.js';

// A 1 MiB adapter: 16 chunks of 64 KiB.
const N = 262_144;
const CHUNK = 64 * 1024;
const adapter = (): NamedTensors => {
  const v = new Float32Array(N);
  for (let i = 0; i < N; i++) v[i] = Math.sin(i) / 7;
  return new Map([['w', { shape: [N], data: v }]]);
};

let server: RunningServer | undefined;
const closers: Array<() => void> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await server?.close();
  server = undefined;
});

const sentBytes = { n: 0 };

async function setup(): Promise<number> {
  const coordinator = new FederationCoordinator({
    federationId: 'fed-download',
    rounds: 1,
    minClients: 1,
    roundDeadlineMs: 30_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng: seededRandomBytes('download-integrity'),
  });
  server = await startFederationServer(coordinator, { address: '127.0.0.1:0', chunkBytes: CHUNK, onBytes: (d, n) => void (d === 'out' && (sentBytes.n += n)) });
  void coordinator.run().catch(() => undefined);
  return server.port;
}

async function trainTask(conn: GrpcConnection, name: string): Promise<{ round: number; adapterSha256: string }> {
  await conn.register(name, 1);
  for (;;) {
    const t = await conn.getTask(2000);
    if (t.kind === 'train') return t.plan;
  }
}

describe('adapter downloads carry per-chunk SHA-256', () => {
  it('sends a SHA-256 of every chunk, and the client verifies and assembles the adapter', async () => {
    const port = await setup();
    const conn = new GrpcConnection({ address: `127.0.0.1:${port}`, chunkBytes: CHUNK });
    closers.push(() => conn.close());
    const plan = await trainTask(conn, 'inst-1');
    const got = await conn.downloadAdapter(plan.round);
    expect(sha256Named(got)).toBe(plan.adapterSha256);

    // What is on the wire, read with a plain client: 16 chunks, each with its own digest.
    const Ctor = federationClientCtor();
    const raw = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { DownloadAdapter: (r: object) => grpc.ClientReadableStream<PbTensorChunk> };
    closers.push(() => raw.close());
    const { clientId, token } = conn as unknown as { clientId: string; token: string };
    const auth = { clientId, sessionToken: token };
    const chunks: PbTensorChunk[] = [];
    for await (const c of raw.DownloadAdapter({ ...auth, round: plan.round }) as AsyncIterable<PbTensorChunk>) chunks.push(c);
    expect(chunks).toHaveLength(N * 4 / CHUNK);
    for (const c of chunks) expect(Buffer.from(c.sha256!).equals(createHash('sha256').update(c.data as Uint8Array).digest())).toBe(true);
  });

  it('refuses a chunk corrupted in transit, naming tensor and offset, as a retryable fault', async () => {
    const port = await setup();
    // Learn the plan directly, then download through a proxy that flips one byte ~600 KB into the stream
    // (inside a chunk's payload: HTTP/2 has no checksum of its own, so only the digest can notice).
    const direct = new GrpcConnection({ address: `127.0.0.1:${port}`, chunkBytes: CHUNK });
    closers.push(() => direct.close());
    let flipped = false;
    const proxy = await tcpProxy(port, {
      down: (d, { before }) => {
        if (flipped || before + d.length <= 600_000) return d;
        flipped = true;
        const out = Buffer.from(d);
        out[600_000 - before]! ^= 0x40;
        return out;
      },
    });
    closers.push(() => proxy.close());
    const plan = await trainTask(direct, 'inst-1');
    const viaProxy = new GrpcConnection({ address: `127.0.0.1:${proxy.port}`, chunkBytes: CHUNK });
    closers.push(() => viaProxy.close());
    // Same session: copy the registration, as a reconnecting client would use its token.
    const { clientId, token, lastPlan } = direct as unknown as { clientId: string; token: string; lastPlan: object };
    Object.assign(viaProxy as unknown as Record<string, unknown>, { clientId, token, lastPlan });
    const err = await viaProxy.downloadAdapter(plan.round).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(flipped).toBe(true);
    expect(err).toBeInstanceOf(FederationError);
    expect((err as FederationError).code).toBe('unavailable');
    expect((err as Error).message).toMatch(/downloaded chunk of tensor "w" at offset \d+ \(65536 bytes\) fails its SHA-256 check/);
  });

  it('resumes an interrupted download where the verified bytes end, and the coordinator sends only the rest', async () => {
    const port = await setup();
    // Kills the first connection once 500 KB went down it.
    const proxy = await tcpProxy(port, { down: (d, { conn, before }) => (conn === 0 && before + d.length > 500_000 ? 'cut' : d) });
    closers.push(() => proxy.close());
    const conn = new GrpcConnection({ address: `127.0.0.1:${proxy.port}`, chunkBytes: CHUNK, onDownloadResumed: (r) => resumed.push(r.receivedBytes) });
    const resumed: number[] = [];
    closers.push(() => conn.close());
    const plan = await trainTask(conn, 'inst-1');
    // The first download dies with its connection.
    await expect(conn.downloadAdapter(plan.round)).rejects.toBeInstanceOf(FederationError);
    const before = sentBytes.n;
    const got = await conn.downloadAdapter(plan.round);
    expect(sha256Named(got)).toBe(plan.adapterSha256);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]! % CHUNK).toBe(0);
    expect(resumed[0]).toBeGreaterThan(0);
    // Only what the client did not hold was sent again.
    expect(sentBytes.n - before).toBe(N * 4 - resumed[0]!);
  });

  it('refuses resume offsets that do not fit the adapter', async () => {
    const port = await setup();
    const conn = new GrpcConnection({ address: `127.0.0.1:${port}`, chunkBytes: CHUNK });
    closers.push(() => conn.close());
    const plan = await trainTask(conn, 'inst-1');
    const { clientId, token } = conn as unknown as { clientId: string; token: string };
    const Ctor = federationClientCtor();
    const raw = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { DownloadAdapter: (r: object) => grpc.ClientReadableStream<PbTensorChunk> };
    closers.push(() => raw.close());
    const attempt = async (resume: object[]) => {
      try {
        for await (const _ of raw.DownloadAdapter({ clientId, sessionToken: token, round: plan.round, resume }) as AsyncIterable<PbTensorChunk>) void _;
        return 'ok';
      } catch (e) {
        return `${grpc.status[(e as grpc.ServiceError).code]}: ${(e as grpc.ServiceError).details}`;
      }
    };
    expect(await attempt([{ name: 'nope', receivedBytes: 0, totalBytes: 4 }])).toBe('INVALID_ARGUMENT: resume names tensor "nope", which the adapter does not have');
    expect(await attempt([{ name: 'w', receivedBytes: 6, totalBytes: N * 4 }])).toMatch(/^INVALID_ARGUMENT: resume offset 6 of tensor "w" must be a multiple of 4/);
    expect(await attempt([{ name: 'w', receivedBytes: 8, totalBytes: 12 }])).toMatch(/^INVALID_ARGUMENT: resume says tensor "w" has 12 bytes/);
    expect(await attempt([{ name: 'w', receivedBytes: N * 4, totalBytes: N * 4 }])).toBe('ok');
  });
});
