import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { envelopeFromMetadata } from './auth-metadata.js';
import { generateIdentity } from './identity.js';
import { createRequestSigner } from './request-signer.js';
import { hashBody, verifyRequestSignature, type RequestEnvelope } from './request-signing.js';

describe('createRequestSigner', () => {
  it('binds federation, name, round, method, body hash, a fresh nonce and the clock', () => {
    const identity = generateIdentity('inst-1', seededRandomBytes('signer'));
    const sign = createRequestSigner({ federationId: 'fed', identity, random: seededRandomBytes('n'), now: () => 1234.7 });
    const body = new Uint8Array([1, 2, 3]);
    const a = envelopeFromMetadata(sign('/fedlora.v1.Federation/GetTask', 2, body), '/fedlora.v1.Federation/GetTask');
    const b = envelopeFromMetadata(sign('/fedlora.v1.Federation/GetTask', 2, body), '/fedlora.v1.Federation/GetTask');
    expect(a.envelope).toMatchObject({ federationId: 'fed', clientName: 'inst-1', round: 2, bodyHash: hashBody(body), timestamp: 1234 });
    expect(a.envelope.nonce).not.toBe(b.envelope.nonce);
    expect(verifyRequestSignature(a.envelope as RequestEnvelope, a.signature!, identity.publicKey)).toBe(true);
  });

  it('needs a named identity', () => {
    const identity = { ...generateIdentity('x', seededRandomBytes(1)), name: '' };
    expect(() => createRequestSigner({ federationId: 'f', identity, random: seededRandomBytes(2) })).toThrow(/identity.name: expected the enrolled client name/);
  });
});
