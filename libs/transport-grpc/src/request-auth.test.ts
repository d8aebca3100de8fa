import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalTrainer } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, runClient } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import { GrpcConnection } from './client.js';
import { federationClientCtor } from './proto.js';
import { headerToProto } from './serde.js';
import type { RunningServer } from './server.js';
import { startFederationServer } from './server.js';
import { encodePublicKey, generateIdentity, type Identity } from './security/identity.js';
import { MemoryNonceCache } from './security/nonce-cache.js';
import { createCertificateAuthority, issueCertificate, type PemPair } from './security/pki.js';
import { createRequestSigner } from './security/request-signer.js';
import { SignatureFailureLimiter } from './security/peer-rate-limit.js';
import { RequestVerifier } from './security/request-verifier.js';
import { channelCredentials, serverCredentials } from './security/tls-credentials.js';

const FED = 'fed-auth';
const random = seededRandomBytes('request-auth');
const alice = generateIdentity('alice', random);
const bob = generateIdentity('bob', random);
const mallory = generateIdentity('mallory', random); // holds a CA certificate but was never enrolled
const carol = generateIdentity('carol', random); // enrolled; her certificate is used to forge signatures
const carolForger = generateIdentity('carol', random); // carol's name, another key
const aliceImpostor = generateIdentity('alice', random); // right name, wrong key

// The enrolment directory the verifier reads at every call (the store in production).
const enrolled = new Map<string, { publicKey: string; status: 'enrolled' | 'revoked' }>([
  ['alice', { publicKey: encodePublicKey(alice.publicKey), status: 'enrolled' }],
  ['bob', { publicKey: encodePublicKey(bob.publicKey), status: 'enrolled' }],
  ['carol', { publicKey: encodePublicKey(carol.publicKey), status: 'enrolled' }],
]);
const refused: Array<{ method: string; reason: string; code: number; clientId?: string }> = [];

let ca: PemPair;
const certs = new Map<string, PemPair>();
let server: RunningServer;
let coordinator: FederationCoordinator;
let run: Promise<unknown>;

function adapter(): NamedTensors {
  return new Map([['w', { shape: [4, 4], data: new Float32Array(16).fill(0.5) }]]);
}

const trainer: LocalTrainer = {
  numExamples: 3,
  async train(_plan, global) {
    const delta: NamedTensors = new Map();
    for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(0.25) });
    return { delta, numExamples: 3, trainLoss: 1 };
  },
};

function creds(name: string): grpc.ChannelCredentials {
  const c = certs.get(name)!;
  return channelCredentials({ ca: ca.certPem, cert: c.certPem, key: c.keyPem });
}

function connection(identity: Identity, certName = identity.name): GrpcConnection {
  return new GrpcConnection({
    address: `127.0.0.1:${server.port}`,
    federationId: FED,
    credentials: creds(certName),
    callTimeoutMs: 5000,
    signer: createRequestSigner({ federationId: FED, identity, random }),
  });
}

/** One raw unary call with caller-chosen metadata (to replay or forge envelopes). */
function rawCall(certName: string, method: string, req: object, metadata: grpc.Metadata): Promise<unknown> {
  const Ctor = federationClientCtor();
  const client = new Ctor(`127.0.0.1:${server.port}`, creds(certName)) as unknown as Record<string, (...a: unknown[]) => void> & grpc.Client;
  return new Promise((resolve, reject) => {
    // A generous deadline: a hundred mTLS handshakes at once take seconds on a loaded machine; it bounds a hang only.
    client[method]!.call(client, req, metadata, { deadline: Date.now() + 120_000 }, (err: grpc.ServiceError | null, res: unknown) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

function signRegister(identity: Identity, req: object): grpc.Metadata {
  const def = federationClientCtor().service.Register!;
  return createRequestSigner({ federationId: FED, identity, random })(def.path, 0, def.requestSerialize(req));
}

beforeAll(async () => {
  ca = await createCertificateAuthority('fed-auth CA', { random });
  const serverPem = await issueCertificate(ca, { commonName: 'coordinator', kind: 'server', random });
  for (const name of ['alice', 'bob', 'mallory', 'carol']) certs.set(name, await issueCertificate(ca, { commonName: name, kind: 'client', random }));
  coordinator = new FederationCoordinator({
    federationId: FED,
    rounds: 1,
    minClients: 2,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: adapter(),
    rng: seededRandomBytes('request-auth-coordinator'),
  });
  server = await startFederationServer(coordinator, {
    address: '127.0.0.1:0',
    credentials: serverCredentials({ ca: ca.certPem, cert: serverPem.certPem, key: serverPem.keyPem, requireClientCert: true }),
    verifier: new RequestVerifier({
      federationId: FED,
      identities: { getClient: (n) => enrolled.get(n) },
      nonces: new MemoryNonceCache(),
      // Ten failed signatures per peer, then (practically) no refill: the flood test counts refusals, not time.
      failureLimiter: new SignatureFailureLimiter({ burst: 10, refillPerSecond: 1e-6 }),
    }),
    onRefused: (r) => refused.push({ method: r.method, reason: r.reason, code: r.code, clientId: r.clientId }),
  });
  run = coordinator.run();
}, 30_000);

afterAll(async () => {
  coordinator?.stop();
  await server?.close();
  await run?.catch(() => undefined);
});

describe('per-request authentication over mTLS on 127.0.0.1', () => {
  it('signed enrolled clients run a whole round (register, poll, download, upload)', async () => {
    const results = await Promise.all(
      [alice, bob].map(async (id) => {
        const conn = connection(id);
        try {
          return await runClient({ name: id.name, connection: conn, trainer });
        } finally {
          conn.close();
        }
      }),
    );
    expect(results.map((r) => r.roundsTrained)).toEqual([[1], [1]]);
    expect(refused).toEqual([]);
  }, 30_000);

  it('refuses an identity that is not enrolled with UNAUTHENTICATED and reports why', async () => {
    const conn = connection(mallory);
    await expect(conn.register('mallory', 1)).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringMatching(/"mallory" is not enrolled/) });
    conn.close();
    expect(refused.at(-1)).toMatchObject({ method: 'Register', reason: 'unknown-identity', code: grpc.status.UNAUTHENTICATED });
  });

  it('refuses a replayed signed request with UNAUTHENTICATED', async () => {
    const req = { clientName: 'alice', federationId: FED, numExamples: 3 };
    const md = signRegister(alice, req);
    await expect(rawCall('alice', 'Register', req, md)).resolves.toMatchObject({ clientId: 'alice' });
    await expect(rawCall('alice', 'Register', req, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/already used/) });
    expect(refused.at(-1)).toMatchObject({ reason: 'replay' });
  });

  it('refuses an unsigned request but serves the read-only status unsigned', async () => {
    await expect(rawCall('alice', 'Register', { clientName: 'alice', federationId: FED, numExamples: 1 }, new grpc.Metadata())).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(refused.at(-1)).toMatchObject({ reason: 'malformed' });
    await expect(rawCall('alice', 'GetStatus', {}, new grpc.Metadata())).resolves.toMatchObject({ federationId: FED });
  });

  it('GetStatus names the institutions of a round only to a signed enrolled caller (#16 finding 12)', async () => {
    // Any TLS peer (here mallory: a CA certificate, never enrolled) asking unsigned learns counts, not names.
    const open = (await rawCall('mallory', 'GetStatus', {}, new grpc.Metadata())) as { roundsJson: string };
    const rounds = JSON.parse(open.roundsJson) as Array<Record<string, unknown>>;
    expect(rounds.map((r) => [r.round, r.status, r.participants, r.participantNames, r.dropped, r.declined, r.redacted])).toEqual([[1, 'completed', 2, [], [], [], true]]);
    expect(open.roundsJson).not.toMatch(/alice|bob/);
    // An enrolled client that signs sees who took part.
    const aliceConn = connection(alice);
    const signedStatus = (await aliceConn.status()) as { rounds: Array<{ participantNames: string[]; redacted?: boolean }> };
    expect(signedStatus.rounds.map((r) => [r.participantNames, r.redacted])).toEqual([[['alice', 'bob'], undefined]]);
    aliceConn.close();
    // A signature that does not verify is refused, not downgraded to the redacted view.
    const impostor = connection(aliceImpostor, 'alice');
    await expect(impostor.status()).rejects.toMatchObject({ code: 'unauthenticated' });
    impostor.close();
    expect(refused.at(-1)).toMatchObject({ method: 'GetStatus', reason: 'bad-signature' });
  });

  it('refuses a signature made with a key other than the enrolled one', async () => {
    const conn = connection(aliceImpostor, 'alice');
    await expect(conn.register('alice', 1)).rejects.toMatchObject({ code: 'unauthenticated' });
    conn.close();
    expect(refused.at(-1)).toMatchObject({ reason: 'bad-signature' });
  });

  it('refuses a request signed for a body other than the one sent', async () => {
    const md = signRegister(alice, { clientName: 'alice', federationId: FED, numExamples: 3 });
    await expect(rawCall('alice', 'Register', { clientName: 'alice', federationId: FED, numExamples: 999 }, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(refused.at(-1)).toMatchObject({ reason: 'mismatch' });
  });

  it('checks an upload stream against the signed header message and names the client it claimed to be', async () => {
    const def = federationClientCtor().service.UploadUpdate!;
    const header = (numExamples: number) => ({ header: headerToProto({ clientId: 'alice', round: 1, nonce: 'n', numExamples, trainLoss: 0, tensors: [], metrics: {} }, 'token') });
    const md = createRequestSigner({ federationId: FED, identity: alice, random })(def.path, 1, def.requestSerialize(header(1)));
    const Ctor = federationClientCtor();
    const client = new Ctor(`127.0.0.1:${server.port}`, creds('alice')) as unknown as Record<string, (...a: unknown[]) => grpc.ClientWritableStream<object>> & grpc.Client;
    const result = new Promise((resolve, reject) => {
      const call = client.UploadUpdate!.call(client, md, (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
      call.write(header(1000)); // not the header that was signed
      call.end();
    });
    await expect(result).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    client.close();
    expect(refused.at(-1)).toMatchObject({ method: 'UploadUpdate', reason: 'mismatch', clientId: 'alice' });
  });

  it('refuses a client acting on another client\'s session', async () => {
    const bobConn = connection(bob);
    await bobConn.register('bob', 1);
    const bobToken = (bobConn as unknown as { token: string }).token;
    bobConn.close();
    const def = federationClientCtor().service.Heartbeat!;
    const req = { clientId: 'bob', sessionToken: bobToken, round: 1 };
    const md = createRequestSigner({ federationId: FED, identity: alice, random })(def.path, 1, def.requestSerialize(req));
    await expect(rawCall('alice', 'Heartbeat', req, md)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/names client "bob" but was signed by "alice"/) });
  });

  it('a revoked client is refused with PERMISSION_DENIED at its next request, without a restart', async () => {
    const conn = connection(bob);
    await conn.register('bob', 1);
    enrolled.set('bob', { ...enrolled.get('bob')!, status: 'revoked' });
    await expect(conn.heartbeat(1)).rejects.toMatchObject({ code: 'permission-denied', message: expect.stringMatching(/revoked/) });
    conn.close();
    expect(refused.at(-1)).toMatchObject({ method: 'Heartbeat', reason: 'revoked', code: grpc.status.PERMISSION_DENIED });
  });

  it('a flood of forged requests is refused on the cheap checks and then throttled per peer; honest clients are served (#16 finding 5)', { timeout: 600_000 }, async () => {
    const def = federationClientCtor().service.Heartbeat!;
    const req = { clientId: 'carol', sessionToken: 'x', round: 1 };
    const body = def.requestSerialize(req);
    const forge = (over: { timestamp?: number }) => {
      const md = createRequestSigner({ federationId: FED, identity: carolForger, random, now: over.timestamp === undefined ? undefined : () => over.timestamp! })(def.path, 1, body);
      md.set('fedlora-signature-bin', Buffer.alloc(64)); // zero signature, as in the issue
      return md;
    };
    const before = refused.length;
    // 1970 timestamps: refused as stale, no signature checked.
    const stale = await Promise.allSettled(Array.from({ length: 100 }, () => rawCall('carol', 'Heartbeat', req, forge({ timestamp: 1 }))));
    expect(stale.every((r) => r.status === 'rejected' && (r.reason as grpc.ServiceError).code === grpc.status.UNAUTHENTICATED)).toBe(true);
    expect(refused.slice(before).map((r) => r.reason)).toEqual(Array(100).fill('stale'));
    // Fresh forgeries from carol's certificate: the first ten are checked, every later one is throttled.
    const fresh: Array<number | undefined> = [];
    for (let i = 0; i < 30; i++) fresh.push(await rawCall('carol', 'Heartbeat', req, forge({})).then(() => undefined, (e: grpc.ServiceError) => e.code));
    const reasons = refused.slice(before + 100).map((r) => r.reason);
    expect(reasons.slice(0, 10)).toEqual(Array(10).fill('bad-signature'));
    expect(reasons.slice(10)).toEqual(Array(20).fill('rate-limited'));
    expect(fresh.slice(10)).toEqual(Array(20).fill(grpc.status.RESOURCE_EXHAUSTED));
    // Another institution is not throttled by carol's forgeries.
    const conn = connection(alice);
    await expect(conn.register('alice', 1)).resolves.toMatchObject({ clientId: 'alice' });
    conn.close();
  });
});
