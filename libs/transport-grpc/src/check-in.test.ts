/**
 * Batched check-ins (CheckIn) on real gRPC over 127.0.0.1: many sessions on one shared channel
 * are answered in one call as their own GetTask calls would be (a drawn session hears its round
 * attempt, not the plan), each by its own token;
 * a coordinator that verifies signed requests refuses the batch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Task } from '@fedlora/federation';
import { FederationCoordinator, createStrategy } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import { GrpcConnection, createSharedChannel } from './client.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
import { encodePublicKey, generateIdentity } from './security/identity.js';
import { MemoryNonceCache } from './security/nonce-cache.js';
import { createRequestSigner } from './security/request-signer.js';
import { RequestVerifier } from './security/request-verifier.js';

const FED = 'fed-check-in';

function coordinator(): FederationCoordinator {
  return new FederationCoordinator({
    federationId: FED,
    rounds: 1,
    minClients: 2,
    minAvailableClients: 4,
    clientsPerRound: 2,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [2], data: new Float32Array(2) }]]),
    rng: seededRandomBytes('check-in'),
  });
}

const kinds = (tasks: Task[]) => tasks.map((t) => t.kind);

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('CheckIn: many sessions in one call', () => {
  it('answers each session as its own GetTask would, and says which sessions the coordinator does not know', async () => {
    const coord = coordinator();
    server = await startFederationServer(coord, { address: '127.0.0.1:0' });
    const address = `127.0.0.1:${server.port}`;
    const channel = createSharedChannel({ address });
    const conns = Array.from({ length: 4 }, () => new GrpcConnection({ address, channel }));
    await Promise.all(conns.map((c, i) => c.register(`inst-${i}`, 1)));
    const run = coord.run();
    while (coord.status().state !== 'training') await new Promise((r) => setTimeout(r, 10));

    const never = new GrpcConnection({ address, channel }); // never registered: no valid session
    const answers = await GrpcConnection.checkIn([...conns, never]);
    expect(answers[4]).toMatchObject({ refused: 'unauthenticated' });
    const own = await Promise.all(conns.map((c) => c.getTask(0)));
    expect(kinds(own).sort()).toEqual(['train', 'train', 'wait', 'wait']);
    // A session drawn into the round hears the attempt only; its own GetTask carries the plan.
    own.forEach((task, i) => expect(answers[i]).toEqual(task.kind === 'train' ? { drawn: { round: task.plan.round, nonce: task.plan.nonce } } : { task }));
    coord.stop();
    await run;
    channel.close();
  });

  it('is refused by a coordinator that verifies signed requests', async () => {
    const random = seededRandomBytes('check-in-signed');
    const alice = generateIdentity('alice', random);
    server = await startFederationServer(coordinator(), {
      address: '127.0.0.1:0',
      verifier: new RequestVerifier({ federationId: FED, identities: { getClient: (n) => (n === 'alice' ? { publicKey: encodePublicKey(alice.publicKey), status: 'enrolled' } : undefined) }, nonces: new MemoryNonceCache() }),
    });
    const conn = new GrpcConnection({ address: `127.0.0.1:${server.port}`, federationId: FED, signer: createRequestSigner({ federationId: FED, identity: alice, random }) });
    await conn.register('alice', 1);
    await expect(GrpcConnection.checkIn([conn])).rejects.toMatchObject({ code: 'permission-denied', message: expect.stringMatching(/signed requests/) });
    expect((await conn.getTask(0)).kind).toBe('wait');
    conn.close();
  });
});
