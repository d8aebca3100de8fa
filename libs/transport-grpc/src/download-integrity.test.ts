import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, sha256Named } from '@fedlora/tensor';
import { FederationCoordinator, FederationError, createStrategy } from '@fedlora/federation';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
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
  server = await startFederationServer(coordinator, { address: '127.0.0.1:0', chunkBytes: CHUNK });
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

/** A TCP proxy that flips one byte of the coordinator-to-client stream once `flipAt` bytes went down. */
async function corruptingProxy(target: number, flipAt: number): Promise<{ port: number; flipped: () => boolean; close(): void }> {
  const sockets = new Set<net.Socket>();
  let flipped = false;
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect(target, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    let down = 0;
    inbound.on('data', (d: Buffer) => outbound.write(d));
    outbound.on('data', (d: Buffer) => {
      if (!flipped && down + d.length > flipAt) {
        d = Buffer.from(d);
        d[flipAt - down] ^= 0x40;
        flipped = true;
      }
      down += d.length;
      inbound.write(d);
    });
    for (const s of [inbound, outbound]) s.on('error', () => undefined).on('close', () => (inbound.destroy(), outbound.destroy()));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    flipped: () => flipped,
    close: () => {
      for (const s of sockets) s.destroy();
      proxy.close();
    },
  };
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
    const proxy = await corruptingProxy(port, 600_000);
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
    expect(proxy.flipped()).toBe(true);
    expect(err).toBeInstanceOf(FederationError);
    expect((err as FederationError).code).toBe('unavailable');
    expect((err as Error).message).toMatch(/downloaded chunk of tensor "w" at offset \d+ \(65536 bytes\) fails its SHA-256 check/);
  });
});
