import { seededRandomBytes } from '@fedlora/tensor';
import { makeGenericClientConstructor, Metadata, Server, ServerCredentials, status, type ServiceDefinition, type ServiceError, type ChannelCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateCall } from './call-authenticator.js';
import { encodePublicKey, generateIdentity } from './identity.js';
import { MemoryNonceCache } from './nonce-cache.js';
import { createCertificateAuthority, issueCertificate, type PemPair } from './pki.js';
import { createRequestSigner } from './request-signer.js';
import { hashBody } from './request-signing.js';
import { authStatusCode, RequestVerifier } from './request-verifier.js';
import { channelCredentials, peerCertificateCommonName, serverCredentials } from './tls-credentials.js';

const random = seededRandomBytes('tls');
const METHOD = '/fedlora.test.Echo/Echo';
const identity = generateIdentity('hospital-a', random);

// A tiny test-only service with raw-bytes serialization: one unary method that echoes the body.
const service: ServiceDefinition = {
  Echo: {
    path: METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};
const EchoClient = makeGenericClientConstructor(service, 'Echo');

let ca: PemPair;
let server: Server;
let port: number;

beforeAll(async () => {
  ca = await createCertificateAuthority('fed-test CA', { random });
  const serverPem = await issueCertificate(ca, { commonName: 'coordinator', kind: 'server', random });
  const verifier = new RequestVerifier({
    federationId: 'fed-test',
    identities: { getClient: (n) => (n === identity.name ? { publicKey: encodePublicKey(identity.publicKey), status: 'enrolled' } : undefined) },
    nonces: new MemoryNonceCache(),
  });
  server = new Server();
  server.addService(service, {
    Echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      const auth = authenticateCall(call, verifier, { bodyHash: hashBody(call.request) });
      if (!auth.ok) return callback({ code: authStatusCode(auth.reason), details: auth.reason });
      callback(null, Buffer.from(JSON.stringify({ signer: auth.clientName, tlsPeer: peerCertificateCommonName(call) })));
    },
  });
  port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', serverCredentials({ ca: ca.certPem, cert: serverPem.certPem, key: serverPem.keyPem, requireClientCert: true }), (err, p) => (err ? reject(err) : resolve(p))),
  );
});

afterAll(() => server?.forceShutdown());

function call(creds: ChannelCredentials, body: Buffer, metadata = new Metadata()): Promise<Buffer> {
  const client = new EchoClient(`127.0.0.1:${port}`, creds);
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(METHOD, (b: Buffer) => b, (b: Buffer) => b, body, metadata, { deadline: Date.now() + 10_000 }, (err: ServiceError | null, res?: Buffer) => {
      client.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

const sign = createRequestSigner({ federationId: 'fed-test', identity, random });
function signed(body: Buffer): Metadata {
  return sign(METHOD, 0, body);
}

describe('TLS handshake with provisioned certificates (grpc-js on 127.0.0.1)', () => {
  it('completes mTLS; the server sees the client certificate name and a verified signature', async () => {
    const client = await issueCertificate(ca, { commonName: 'hospital-a', kind: 'client', random });
    const body = Buffer.from('hello');
    const res = await call(channelCredentials({ ca: ca.certPem, cert: client.certPem, key: client.keyPem }), body, signed(body));
    expect(JSON.parse(res.toString())).toEqual({ signer: 'hospital-a', tlsPeer: 'hospital-a' });
  });

  it('refuses a replay of the same signed metadata with UNAUTHENTICATED', async () => {
    const client = await issueCertificate(ca, { commonName: 'hospital-a', kind: 'client', random });
    const creds = channelCredentials({ ca: ca.certPem, cert: client.certPem, key: client.keyPem });
    const body = Buffer.from('once');
    const md = signed(body);
    await call(creds, body, md);
    await expect(call(creds, body, md)).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: 'replay' });
  });

  it('refuses a request signed by one client over another client\'s TLS certificate', async () => {
    const other = await issueCertificate(ca, { commonName: 'hospital-b', kind: 'client', random });
    const body = Buffer.from('x');
    await expect(call(channelCredentials({ ca: ca.certPem, cert: other.certPem, key: other.keyPem }), body, signed(body))).rejects.toMatchObject({
      code: status.UNAUTHENTICATED,
      details: 'mismatch',
    });
  });

  it('refuses a client that presents no certificate', async () => {
    await expect(call(channelCredentials({ ca: ca.certPem }), Buffer.from('x'))).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('refuses a client certificate signed by another CA', async () => {
    const rogueCa = await createCertificateAuthority('rogue CA', { random });
    const rogue = await issueCertificate(rogueCa, { commonName: 'hospital-a', kind: 'client', random });
    await expect(call(channelCredentials({ ca: ca.certPem, cert: rogue.certPem, key: rogue.keyPem }), Buffer.from('x'))).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('a client that trusts another CA refuses the coordinator', async () => {
    const otherCa = await createCertificateAuthority('other CA', { random });
    const client = await issueCertificate(ca, { commonName: 'hospital-a', kind: 'client', random });
    await expect(call(channelCredentials({ ca: otherCa.certPem, cert: client.certPem, key: client.keyPem }), Buffer.from('x'))).rejects.toMatchObject({ code: status.UNAVAILABLE });
  });

  it('an unsigned request over valid mTLS is refused as UNAUTHENTICATED', async () => {
    const client = await issueCertificate(ca, { commonName: 'hospital-a', kind: 'client', random });
    await expect(call(channelCredentials({ ca: ca.certPem, cert: client.certPem, key: client.keyPem }), Buffer.from('x'))).rejects.toMatchObject({ code: status.UNAUTHENTICATED, details: 'malformed' });
  });

  it('rejects mTLS server credentials without a CA', () => {
    expect(() => serverCredentials({ cert: 'c', key: 'k' })).toThrow(/tls.ca: expected the federation CA/);
    expect(ServerCredentials.createInsecure()).toBeDefined();
  });
});
