import { seededRandomBytes } from '@fedlora/tensor';
import { Metadata } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AUTH_METADATA_KEYS, envelopeFromMetadata, signedMetadata } from './auth-metadata.js';
import { generateIdentity } from './identity.js';
import { hashBody, verifyRequestSignature, type RequestEnvelope } from './request-signing.js';

describe('auth metadata', () => {
  it('round-trips an envelope and its signature through gRPC metadata', () => {
    const id = generateIdentity('a', seededRandomBytes('md'));
    const env: RequestEnvelope = { federationId: 'f', clientName: 'a', round: 7, method: '/p/M', bodyHash: hashBody(new Uint8Array(1)), nonce: 'ab'.repeat(16), timestamp: 123 };
    const { envelope, signature } = envelopeFromMetadata(signedMetadata(env, id.secretKey), '/p/M');
    expect(envelope).toEqual(env);
    expect(verifyRequestSignature(envelope as RequestEnvelope, signature!, id.publicKey)).toBe(true);
  });

  it('takes the method from the server, not the client', () => {
    const id = generateIdentity('a', seededRandomBytes('md2'));
    const env: RequestEnvelope = { federationId: 'f', clientName: 'a', round: 0, method: '/p/Cheap', bodyHash: hashBody(new Uint8Array(0)), nonce: 'cd'.repeat(16), timestamp: 1 };
    const { envelope, signature } = envelopeFromMetadata(signedMetadata(env, id.secretKey), '/p/Expensive');
    expect(verifyRequestSignature(envelope as RequestEnvelope, signature!, id.publicKey)).toBe(false);
  });

  it('leaves missing, duplicated or non-numeric fields undefined', () => {
    const md = new Metadata();
    md.add(AUTH_METADATA_KEYS.clientName, 'a');
    md.add(AUTH_METADATA_KEYS.clientName, 'b');
    md.set(AUTH_METADATA_KEYS.round, '1e3');
    const { envelope, signature } = envelopeFromMetadata(md, '/p/M');
    expect(envelope.clientName).toBeUndefined();
    expect(envelope.round).toBeUndefined();
    expect(signature).toBeUndefined();
  });
});
