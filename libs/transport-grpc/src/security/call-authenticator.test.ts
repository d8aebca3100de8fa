import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { authenticateCall } from './call-authenticator.js';
import { encodePublicKey, generateIdentity } from './identity.js';
import { MemoryNonceCache } from './nonce-cache.js';
import { createRequestSigner } from './request-signer.js';
import { RequestVerifier } from './request-verifier.js';

const identity = generateIdentity('inst-1', seededRandomBytes('auth'));
const sign = createRequestSigner({ federationId: 'fed', identity, random: seededRandomBytes('nonce'), now: () => 5_000 });
const verifier = () =>
  new RequestVerifier({
    federationId: 'fed',
    identities: { getClient: (n) => (n === 'inst-1' ? { publicKey: encodePublicKey(identity.publicKey), status: 'enrolled' } : undefined) },
    nonces: new MemoryNonceCache({ now: () => 5_000 }),
    now: () => 5_000,
  });
const call = (path: string, metadataPath: string, cn?: string) => ({
  metadata: sign(metadataPath, 1, new Uint8Array(0)),
  getPath: () => path,
  getAuthContext: () => (cn === undefined ? null : { sslPeerCertificate: { subject: { CN: cn } } }),
});

describe('authenticateCall', () => {
  it('accepts a call signed for its own method by the certificate holder', () => {
    expect(authenticateCall(call('/p/M', '/p/M', 'inst-1'), verifier(), { round: 1 })).toEqual({ ok: true, clientName: 'inst-1' });
  });

  it('refuses a signature made for another method (the method comes from the call)', () => {
    expect(authenticateCall(call('/p/Other', '/p/M'), verifier())).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses when the TLS certificate names another client, unless binding is off', () => {
    expect(authenticateCall(call('/p/M', '/p/M', 'inst-2'), verifier())).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(authenticateCall(call('/p/M', '/p/M', 'inst-2'), verifier(), { bindTlsIdentity: false }).ok).toBe(true);
  });
});
