/**
 * #11 §6 on real gRPC (127.0.0.1): bytes that are not a request message are the caller's fault.
 * grpc-js answers a body its deserializer cannot parse with INTERNAL; the server must answer
 * INVALID_ARGUMENT naming the method (UNAUTHENTICATED first when requests must be signed and the
 * garbage is not), and keep serving.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FederationCoordinator, createStrategy } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
import { encodePublicKey, generateIdentity } from './security/identity.js';
import { MemoryNonceCache } from './security/nonce-cache.js';
import { createRequestSigner } from './security/request-signer.js';
import { RequestVerifier } from './security/request-verifier.js';

const FED = 'fed-decode';
const random = seededRandomBytes('request-decoding');
const alice = generateIdentity('alice', random);
// Each fails to decode as any fedlora.v1 message: a varint that runs past the end, and wire type 7.
const GARBAGE = [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('garbage bytes here!!')];
const identity = (b: Buffer): Buffer => b;

function coordinator(): FederationCoordinator {
  return new FederationCoordinator({
    federationId: FED,
    rounds: 1,
    minClients: 1,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [2], data: new Float32Array(2) }]]),
    rng: seededRandomBytes('request-decoding-coordinator'),
  });
}

let open: RunningServer;
let signed: RunningServer;
const refused: Array<{ method: string; code: number; reason: string }> = [];

beforeAll(async () => {
  open = await startFederationServer(coordinator(), { address: '127.0.0.1:0' });
  signed = await startFederationServer(coordinator(), {
    address: '127.0.0.1:0',
    verifier: new RequestVerifier({ federationId: FED, identities: { getClient: (n) => (n === 'alice' ? { publicKey: encodePublicKey(alice.publicKey), status: 'enrolled' } : undefined) }, nonces: new MemoryNonceCache() }),
    onRefused: (r) => refused.push({ method: r.method, code: r.code, reason: r.reason }),
  });
});

afterAll(async () => {
  await open?.close();
  await signed?.close();
});

/** Sends `body` as the request of a unary method, byte for byte; resolves with the status. */
function rawUnary(port: number, method: string, body: Buffer, metadata = new grpc.Metadata()): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(`/fedlora.v1.Federation/${method}`, identity, identity, body, metadata, { deadline: Date.now() + 10_000 }, (err) => {
      client.close();
      resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' });
    });
  });
}

/** Sends `frames` on an UploadUpdate stream, byte for byte; resolves with the status. */
function rawUpload(port: number, frames: Buffer[], metadata = new grpc.Metadata()): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest('/fedlora.v1.Federation/UploadUpdate', identity, identity, metadata, { deadline: Date.now() + 10_000 }, (err) => {
      client.close();
      resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' });
    });
    for (const f of frames) call.write(f);
    call.end();
  });
}

describe('undecodable request bodies (gRPC on 127.0.0.1)', () => {
  it('answers garbage bytes on every unary method with INVALID_ARGUMENT naming the method and the message expected, not INTERNAL', async () => {
    for (const method of ['Register', 'GetTask', 'CheckIn', 'Heartbeat', 'Decline', 'UploadStatus', 'SecAggExchange', 'GetStatus']) {
      for (const body of GARBAGE) {
        const r = await rawUnary(open.port, method, body);
        expect(r.code, `${method} ${body.toString('hex')}`).toBe(grpc.status.INVALID_ARGUMENT);
        expect(r.details).toMatch(new RegExp(`^${method}: the request body \\(${body.length} bytes\\) is not a valid fedlora\\.v1\\.\\w+ message`));
      }
    }
  });

  it('answers a garbage DownloadAdapter request and a garbage upload stream with INVALID_ARGUMENT', async () => {
    const client = new grpc.Client(`127.0.0.1:${open.port}`, grpc.credentials.createInsecure());
    const download = await new Promise<{ code: number; details: string }>((resolve) => {
      const call = client.makeServerStreamRequest('/fedlora.v1.Federation/DownloadAdapter', identity, identity, GARBAGE[1]!, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      call.on('data', () => undefined);
      call.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
      call.on('end', () => resolve({ code: grpc.status.OK, details: '' }));
    });
    client.close();
    expect(download).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^DownloadAdapter: .* not a valid fedlora\.v1\.DownloadRequest message/) });
    for (const body of GARBAGE) {
      expect(await rawUpload(open.port, [body])).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^UploadUpdate: .* fedlora\.v1\.UploadMessage/) });
    }
  });

  it('behind the signature gate: unsigned garbage is UNAUTHENTICATED, garbage signed by an enrolled client is INVALID_ARGUMENT', async () => {
    const unsigned = await rawUnary(signed.port, 'GetTask', GARBAGE[1]!);
    expect(unsigned.code).toBe(grpc.status.UNAUTHENTICATED);
    const sign = createRequestSigner({ federationId: FED, identity: alice, random });
    const md = sign('/fedlora.v1.Federation/GetTask', 7, GARBAGE[1]!);
    const signedGarbage = await rawUnary(signed.port, 'GetTask', GARBAGE[1]!, md);
    expect(signedGarbage).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^GetTask: .* fedlora\.v1\.GetTaskRequest/) });
    // A signature over other bytes does not make garbage look authenticated.
    const otherBody = sign('/fedlora.v1.Federation/Heartbeat', 0, Buffer.from('x'));
    expect((await rawUnary(signed.port, 'Heartbeat', GARBAGE[0]!, otherBody)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(refused.map((r) => r.code)).not.toContain(grpc.status.INTERNAL);
  });

  it('keeps serving well-formed requests after the garbage', async () => {
    const status = await rawUnary(open.port, 'GetStatus', Buffer.alloc(0));
    expect(status.code).toBe(grpc.status.OK);
  });
});
