import { seededRandomBytes } from '@fedlora/tensor';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { encodePublicKey, generateIdentity, type Identity } from './identity.js';
import { MemoryNonceCache } from './nonce-cache.js';
import { hashBody, newNonce, signRequest, type RequestEnvelope } from './request-signing.js';
import { SignatureFailureLimiter } from './peer-rate-limit.js';
import { authStatusCode, RequestVerifier, type IdentityDirectory } from './request-verifier.js';

const rng = seededRandomBytes('verifier');
const alice = generateIdentity('alice', rng);
const bob = generateIdentity('bob', rng);
const METHOD = '/fedlora.v1.Federation/GetTask';

function directory(revoked: string[] = []): IdentityDirectory {
  const keys = new Map([alice, bob].map((i) => [i.name, encodePublicKey(i.publicKey)]));
  return { getClient: (name) => (keys.has(name) ? { publicKey: keys.get(name)!, status: revoked.includes(name) ? 'revoked' : 'enrolled' } : undefined) };
}

function setup(opts: { revoked?: string[]; now?: number } = {}) {
  let t = opts.now ?? 1_700_000_000_000;
  const verifier = new RequestVerifier({
    federationId: 'fed-1',
    identities: directory(opts.revoked),
    nonces: new MemoryNonceCache({ now: () => t }),
    now: () => t,
    maxClockSkewMs: 60_000,
  });
  return { verifier, advance: (ms: number) => void (t += ms), now: () => t };
}

function envelope(who: Identity, over: Partial<RequestEnvelope> = {}): RequestEnvelope {
  return {
    federationId: 'fed-1',
    clientName: who.name,
    round: 3,
    method: METHOD,
    bodyHash: hashBody(new TextEncoder().encode('body')),
    nonce: newNonce(rng),
    timestamp: 1_700_000_000_000,
    ...over,
  };
}

describe('RequestVerifier', () => {
  it('accepts a well-signed request from an enrolled client', () => {
    const { verifier } = setup();
    const env = envelope(alice);
    expect(verifier.verify(env, signRequest(env, alice.secretKey), { method: METHOD, round: 3, bodyHash: env.bodyHash })).toEqual({ ok: true, clientName: 'alice' });
  });

  it('refuses a replayed request (same nonce) with reason "replay"', () => {
    const { verifier } = setup();
    const env = envelope(alice);
    const sig = signRequest(env, alice.secretKey);
    expect(verifier.verify(env, sig).ok).toBe(true);
    expect(verifier.verify(env, sig)).toMatchObject({ ok: false, reason: 'replay' });
  });

  it('refuses an identity that is not enrolled', () => {
    const { verifier } = setup();
    const mallory = generateIdentity('mallory', rng);
    const env = envelope(mallory);
    expect(verifier.verify(env, signRequest(env, mallory.secretKey))).toMatchObject({ ok: false, reason: 'unknown-identity' });
  });

  it('refuses a revoked client with PERMISSION_DENIED, others with UNAUTHENTICATED', () => {
    const { verifier } = setup({ revoked: ['bob'] });
    const env = envelope(bob);
    const r = verifier.verify(env, signRequest(env, bob.secretKey));
    expect(r).toMatchObject({ ok: false, reason: 'revoked' });
    expect(authStatusCode('revoked')).toBe(status.PERMISSION_DENIED);
    expect(authStatusCode('bad-signature')).toBe(status.UNAUTHENTICATED);
  });

  it('refuses a request signed with another client\'s key (impersonation)', () => {
    const { verifier } = setup();
    const env = envelope(alice);
    expect(verifier.verify(env, signRequest(env, bob.secretKey))).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses any tampered field', () => {
    const { verifier } = setup();
    const env = envelope(alice);
    const sig = signRequest(env, alice.secretKey);
    for (const tampered of [{ round: 4 }, { method: '/fedlora.v1.Federation/Decline' }, { bodyHash: hashBody(new Uint8Array([1])) }, { timestamp: env.timestamp + 1 }]) {
      expect(verifier.verify({ ...env, ...tampered }, sig)).toMatchObject({ ok: false, reason: 'bad-signature' });
    }
  });

  it('refuses a request signed for another federation, round or method than the call', () => {
    const { verifier } = setup();
    const other = envelope(alice, { federationId: 'fed-2' });
    expect(verifier.verify(other, signRequest(other, alice.secretKey))).toMatchObject({ ok: false, reason: 'wrong-federation' });
    const env = envelope(alice);
    expect(verifier.verify(env, signRequest(env, alice.secretKey), { round: 5 })).toMatchObject({ ok: false, reason: 'mismatch', message: expect.stringMatching(/round: the request is for 5 but was signed for 3/) });
  });

  it('refuses stale and future timestamps outside the skew window', () => {
    const { verifier, advance } = setup();
    const env = envelope(alice);
    advance(60_001);
    expect(verifier.verify(env, signRequest(env, alice.secretKey))).toMatchObject({ ok: false, reason: 'stale' });
    const future = envelope(alice, { timestamp: 1_700_000_000_000 + 200_000 });
    expect(verifier.verify(future, signRequest(future, alice.secretKey))).toMatchObject({ ok: false, reason: 'stale' });
  });

  it('does not burn the nonce of a request whose signature is bad', () => {
    const { verifier } = setup();
    const env = envelope(alice);
    expect(verifier.verify(env, new Uint8Array(64)).ok).toBe(false);
    expect(verifier.verify(env, signRequest(env, alice.secretKey)).ok).toBe(true);
  });

  it('reports malformed envelopes and signatures without throwing', () => {
    const { verifier } = setup();
    expect(verifier.verify(null, new Uint8Array(64))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifier.verify({ ...envelope(alice), nonce: 'xyz' }, new Uint8Array(64))).toMatchObject({ ok: false, reason: 'malformed', message: expect.stringMatching(/nonce: expected/) });
    expect(verifier.verify(envelope(alice), 'sig')).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('RequestVerifier against forged-signature floods (#16 finding 5)', () => {
  it('refuses forgeries on the cheap checks before the signature: stale time, other body, other certificate', () => {
    const { verifier } = setup();
    const zero = new Uint8Array(64);
    // The forgery: zero signature, 1970 timestamp. Before, it cost a full signature check and came back bad-signature.
    expect(verifier.verify(envelope(alice, { timestamp: 0 }), zero)).toMatchObject({ ok: false, reason: 'stale' });
    const env = envelope(alice);
    expect(verifier.verify(env, zero, { bodyHash: hashBody(new Uint8Array([9])) })).toMatchObject({ ok: false, reason: 'mismatch', message: expect.stringMatching(/^bodyHash/) });
    expect(verifier.verify(env, zero, { method: '/fedlora.v1.Federation/Decline' })).toMatchObject({ ok: false, reason: 'mismatch', message: expect.stringMatching(/^method/) });
    expect(verifier.verify(env, zero, { tlsClientName: 'bob' })).toMatchObject({ ok: false, reason: 'mismatch', message: expect.stringMatching(/certificate belongs to "bob"/) });
    // The valid signature with the wrong certificate is refused the same way (the binding holds before verification).
    expect(verifier.verify(env, signRequest(env, alice.secretKey), { tlsClientName: 'bob' })).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('throttles a peer whose signatures keep failing, without touching other peers or honest requests', () => {
    let t = 0;
    const base = 1_700_000_000_000;
    const verifier = new RequestVerifier({
      federationId: 'fed-1',
      identities: directory(),
      nonces: new MemoryNonceCache({ now: () => base }),
      now: () => base,
      maxClockSkewMs: 60_000,
      failureLimiter: new SignatureFailureLimiter({ burst: 10, refillPerSecond: 1, now: () => t }),
    });
    const forged = () => verifier.verify(envelope(alice), new Uint8Array(64), { peer: 'cert:mallory' });
    const results = Array.from({ length: 1000 }, forged);
    // 1,000 fresh forgeries cost 10 signature checks; the other 990 are refused before any.
    expect(results.slice(0, 10).every((r) => !r.ok && r.reason === 'bad-signature')).toBe(true);
    expect(results.slice(10).every((r) => !r.ok && r.reason === 'rate-limited')).toBe(true);
    expect(results[10]).toMatchObject({ message: expect.stringMatching(/retry in \d+ ms/) });
    // Another peer is not throttled: its good request passes, its forgery is checked.
    const env = envelope(alice);
    expect(verifier.verify(env, signRequest(env, alice.secretKey), { peer: 'cert:alice' })).toEqual({ ok: true, clientName: 'alice' });
    expect(verifier.verify(envelope(bob), new Uint8Array(64), { peer: 'cert:bob' })).toMatchObject({ ok: false, reason: 'bad-signature' });
    // The throttled peer regains one check per second.
    t += 1000;
    expect(forged()).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(forged()).toMatchObject({ ok: false, reason: 'rate-limited' });
    expect(authStatusCode('rate-limited')).toBe(status.RESOURCE_EXHAUSTED);
  });
});

describe('RequestVerifier under hostile input', () => {
  it('never throws and never accepts on thousands of random or mutated envelopes', () => {
    const { verifier } = setup();
    const good = envelope(alice);
    const sig = signRequest(good, alice.secretKey);
    const junk = seededRandomBytes('fuzz');
    const values: unknown[] = [undefined, null, '', 'x'.repeat(300), -1, 1.5, 2 ** 60, NaN, Infinity, {}, [], true, '\u0000', 'ab'.repeat(16)];
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const b = junk(4);
      const env: Record<string, unknown> = { ...good, nonce: Buffer.from(junk(16)).toString('hex') };
      const key = (['federationId', 'clientName', 'round', 'method', 'bodyHash', 'nonce', 'timestamp'] as const)[b[0]! % 7]!;
      env[key] = values[b[1]! % values.length];
      const signature = b[2]! % 3 === 0 ? junk(64) : b[2]! % 3 === 1 ? sig : junk(b[3]! % 100);
      const r = verifier.verify(b[3]! % 17 === 0 ? values[b[0]! % values.length] : env, signature);
      if (r.ok) accepted++;
    }
    expect(accepted).toBe(0);
  });
});
