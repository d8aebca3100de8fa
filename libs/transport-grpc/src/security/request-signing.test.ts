import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { generateIdentity } from './identity.js';
import { canonicalRequestBytes, envelopeProblem, hashBody, newNonce, signRequest, verifyRequestSignature, type RequestEnvelope } from './request-signing.js';

const env: RequestEnvelope = {
  federationId: 'fed',
  clientName: 'a',
  round: 1,
  method: '/fedlora.v1.Federation/Heartbeat',
  bodyHash: hashBody(new Uint8Array(0)),
  nonce: '00112233445566778899aabbccddeeff',
  timestamp: 1700000000000,
};

describe('request signing', () => {
  it('signs a domain-separated JSON array of the envelope fields', () => {
    expect(new TextDecoder().decode(canonicalRequestBytes(env))).toBe(
      '["fedlora/request/v1","fed","a",1,"/fedlora.v1.Federation/Heartbeat","e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","00112233445566778899aabbccddeeff",1700000000000]',
    );
  });

  it('verifies its own signature and no other key\'s', () => {
    const rng = seededRandomBytes('sign');
    const a = generateIdentity('a', rng);
    const b = generateIdentity('b', rng);
    const sig = signRequest(env, a.secretKey);
    expect(verifyRequestSignature(env, sig, a.publicKey)).toBe(true);
    expect(verifyRequestSignature(env, sig, b.publicKey)).toBe(false);
    expect(verifyRequestSignature(env, sig.subarray(0, 63), a.publicKey)).toBe(false);
  });

  it('keeps fields unambiguous: moving text between fields changes the signed bytes', () => {
    const x = canonicalRequestBytes({ ...env, federationId: 'fe', clientName: 'da' });
    const y = canonicalRequestBytes({ ...env, federationId: 'fed', clientName: 'a' });
    expect(Buffer.compare(Buffer.from(x), Buffer.from(y))).not.toBe(0);
  });

  it('names the bad field of a malformed envelope', () => {
    expect(envelopeProblem({ ...env, round: -1 })).toBe('round: expected an integer >= 0, received -1');
    expect(envelopeProblem({ ...env, bodyHash: 'zz' })).toMatch(/^bodyHash: expected 64 lowercase hex digits/);
    expect(() => signRequest({ ...env, timestamp: 1.5 }, new Uint8Array(64))).toThrow(RangeError);
    expect(() => signRequest(env, new Uint8Array(10))).toThrow(/secretKey: expected 64 bytes, received 10/);
  });

  it('draws 16-byte hex nonces from the given source', () => {
    expect(newNonce(seededRandomBytes(1))).toMatch(/^[0-9a-f]{32}$/);
    expect(newNonce(seededRandomBytes(1))).toBe(newNonce(seededRandomBytes(1)));
  });
});
