import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { LocalTrainer } from '@fedlora/federation';
import { FederationCoordinator, FederationError, createStrategy, runClient } from '@fedlora/federation';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';

// 1.5M floats = 6 MiB: more than gRPC's default 4 MiB message limit in one tensor.
const BIG = 1_572_864;

function adapter(): NamedTensors {
  return new Map([
    ['big', { shape: [BIG], data: Float32Array.from({ length: BIG }, (_, i) => (i % 97) / 97) }],
    ['small', { shape: [2, 2], data: new Float32Array(4) }],
  ]);
}

function trainer(value: number, numExamples: number): LocalTrainer {
  return {
    numExamples,
    async train(_plan, global) {
      const delta: NamedTensors = new Map();
      for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(value) });
      return { delta, numExamples, trainLoss: value };
    },
  };
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function coordinator(minClients: number) {
  return new FederationCoordinator({
    federationId: 'fed-test',
    rounds: 1,
    minClients,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng: seededRandomBytes('grpc'),
  });
}

describe('gRPC transport on 127.0.0.1', () => {
  it('runs a round with a 6 MiB adapter streamed in chunks both ways', async () => {
    const coord = coordinator(2);
    server = await startFederationServer(coord, { address: '127.0.0.1:0' });
    const run = coord.run();
    const address = `127.0.0.1:${server.port}`;
    await Promise.all(
      [trainer(1, 1), trainer(3, 3)].map((t, i) => {
        const connection = new GrpcConnection({ address, federationId: 'fed-test' });
        return runClient({ name: `c${i}`, connection, trainer: t, pollMs: 500 }).finally(() => connection.close());
      }),
    );
    const [h] = await run;
    expect(h!.status).toBe('completed');
    const big = coord.adapter.get('big')!.data;
    expect(big[5]).toBeCloseTo(5 / 97 + (1 * 1 + 3 * 3) / 4, 5);
    expect(big[BIG - 1]).toBeCloseTo(((BIG - 1) % 97) / 97 + 2.5, 5);
  });

  it('maps a bad session to UNAUTHENTICATED and a foreign federation to PERMISSION_DENIED', async () => {
    const coord = coordinator(1);
    server = await startFederationServer(coord, { address: '127.0.0.1:0' });
    const address = `127.0.0.1:${server.port}`;
    const conn = new GrpcConnection({ address });
    await expect(conn.getTask(0)).rejects.toMatchObject({ code: 'unauthenticated' });
    const foreign = new GrpcConnection({ address, federationId: 'other' });
    await expect(foreign.register('x', 1)).rejects.toMatchObject({ code: 'permission-denied', message: expect.stringContaining('fed-test') });
    conn.close();
    foreign.close();
  });

  it('refuses an upload that starts with a chunk, and keeps serving', async () => {
    const coord = coordinator(1);
    server = await startFederationServer(coord, { address: '127.0.0.1:0' });
    const address = `127.0.0.1:${server.port}`;
    const Ctor = federationClientCtor();
    const raw = new Ctor(address, grpc.credentials.createInsecure()) as unknown as Record<string, (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<object>>;
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = raw.UploadUpdate!((e) => resolve(e));
      call.write({ chunk: { round: 1, tensorName: 'big', offset: 0, totalBytes: 4, data: Buffer.alloc(4) } });
      call.end();
    });
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/first upload message must be the header/);
    const conn = new GrpcConnection({ address });
    await expect(conn.register('still-alive', 1)).resolves.toEqual({ clientId: 'still-alive' });
    conn.close();
  });

  it('reports an unreachable coordinator as unavailable', async () => {
    const conn = new GrpcConnection({ address: '127.0.0.1:1', callTimeoutMs: 2000 });
    const err = await conn.register('x', 1).catch((e) => e);
    expect(err).toBeInstanceOf(FederationError);
    expect(err.code).toBe('unavailable');
    conn.close();
  });
});
