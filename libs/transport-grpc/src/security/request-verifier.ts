/**
 * Server-side check of a signed request: well-formed envelope, this federation, a timestamp
 * inside the allowed clock skew, the expected method/round/body, the mTLS certificate name, an
 * enrolled and not revoked identity, then (unless the peer is throttled) a valid Ed25519
 * signature, and a nonce never seen before. Every check that costs nothing runs before the
 * signature (#16 finding 5): a forged request with a stale timestamp, another body or another
 * client's certificate is refused without any curve arithmetic, and a peer whose signatures keep
 * failing is refused without checking more of them (peer-rate-limit.ts). Results are values, not
 * exceptions, so the gRPC layer maps each to a status in one place (`authStatusCode`) and the
 * audit log records the reason.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { decodePublicKey } from './identity.js';
import type { NonceCache } from './nonce-cache.js';
import { SignatureFailureLimiter } from './peer-rate-limit.js';
import { envelopeProblem, verifyRequestSignature, type RequestEnvelope } from './request-signing.js';

/** Why a request was refused. */
export type AuthFailureReason =
  | 'malformed' // the envelope or signature is missing or badly formed
  | 'wrong-federation' // signed for another federation
  | 'unknown-identity' // no enrolled client of that name
  | 'revoked' // the client's enrolment was revoked
  | 'bad-signature' // the signature does not verify under the enrolled key
  | 'stale' // timestamp outside the allowed clock skew
  | 'mismatch' // signed for another method, round or body, or by another client than the TLS certificate names
  | 'replay' // nonce already used
  | 'rate-limited'; // too many failed signatures from this peer: refused before checking another

/** Outcome of `RequestVerifier.verify`. */
export type AuthResult = { ok: true; clientName: string } | { ok: false; reason: AuthFailureReason; message: string; clientName?: string };

/** The enrolment lookup the verifier needs; `FederationStore` satisfies it. */
export interface IdentityDirectory {
  getClient(name: string): { publicKey: string; status: 'enrolled' | 'revoked' } | undefined;
}

/** Options of the verifier. */
export interface RequestVerifierOptions {
  federationId: string;
  identities: IdentityDirectory;
  nonces: NonceCache;
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
  /** Largest accepted |server time - request timestamp|, ms (default 5 minutes). */
  maxClockSkewMs?: number;
  /** Throttles peers whose signatures fail (default: 10 in a burst, then 1 per second per peer). */
  failureLimiter?: SignatureFailureLimiter;
}

/** What the server itself knows about the call and the envelope must match. */
export interface ExpectedRequest {
  method?: string;
  round?: number;
  bodyHash?: string;
  /** The common name of the peer's mTLS client certificate: the signer must be that client (checked before the signature). */
  tlsClientName?: string;
  /**
   * Who is calling, as the transport (not the request) says: failed signatures are counted per
   * peer. Without it failures are counted per claimed client name.
   */
  peer?: string;
}

/** Verifies signed request envelopes against the enrolled identities. */
export class RequestVerifier {
  private readonly now: () => number;
  private readonly skew: number;
  private readonly limiter: SignatureFailureLimiter;

  constructor(private readonly options: RequestVerifierOptions) {
    this.now = options.now ?? Date.now;
    this.limiter = options.failureLimiter ?? new SignatureFailureLimiter();
    this.skew = options.maxClockSkewMs ?? 5 * 60_000;
    if (!Number.isFinite(this.skew) || this.skew <= 0) throw new RangeError(`maxClockSkewMs: expected a positive number, received ${options.maxClockSkewMs}`);
  }

  /**
   * Checks `env` and `signature`. The nonce is recorded only after the signature verifies, so
   * nobody without the key can use up an honest client's nonces.
   */
  verify(env: unknown, signature: unknown, expected: ExpectedRequest = {}): AuthResult {
    const problem = envelopeProblem(env);
    if (problem) return fail('malformed', `request envelope: ${problem}`);
    const e = env as RequestEnvelope;
    if (!(signature instanceof Uint8Array) || signature.length !== 64) {
      return fail('malformed', `signature: expected 64 bytes, received ${signature instanceof Uint8Array ? signature.length : typeof signature}`, e.clientName);
    }
    if (e.federationId !== this.options.federationId) {
      return fail('wrong-federation', `federationId: expected ${JSON.stringify(this.options.federationId)}, received ${JSON.stringify(e.federationId)}`, e.clientName);
    }
    // Cheap checks first: none of them needs the key, and each refuses most forgeries outright.
    const t = this.now();
    if (Math.abs(t - e.timestamp) > this.skew) {
      return fail('stale', `timestamp ${e.timestamp} is ${t - e.timestamp} ms from the server clock; allowed skew is ${this.skew} ms`, e.clientName);
    }
    for (const key of ['method', 'round', 'bodyHash'] as const) {
      if (expected[key] !== undefined && expected[key] !== e[key]) {
        return fail('mismatch', `${key}: the request is for ${JSON.stringify(expected[key])} but was signed for ${JSON.stringify(e[key])}`, e.clientName);
      }
    }
    if (expected.tlsClientName !== undefined && expected.tlsClientName !== e.clientName) {
      return fail('mismatch', `the TLS client certificate belongs to ${JSON.stringify(expected.tlsClientName)} but the request was signed by ${JSON.stringify(e.clientName)}`, e.clientName);
    }
    const client = this.options.identities.getClient(e.clientName);
    if (!client) return fail('unknown-identity', `client ${JSON.stringify(e.clientName)} is not enrolled in this federation`, e.clientName);
    if (client.status === 'revoked') return fail('revoked', `client ${JSON.stringify(e.clientName)} has been revoked`, e.clientName);
    let publicKey: Uint8Array;
    try {
      publicKey = decodePublicKey(client.publicKey);
    } catch {
      return fail('unknown-identity', `client ${JSON.stringify(e.clientName)} has no usable enrolled key`, e.clientName);
    }
    const peer = expected.peer ?? `name:${e.clientName}`;
    const wait = this.limiter.retryAfterMs(peer);
    if (wait > 0) return fail('rate-limited', `too many signatures from this peer failed to verify; retry in ${wait} ms`, e.clientName);
    if (!verifyRequestSignature(e, signature, publicKey)) {
      this.limiter.recordFailure(peer);
      return fail('bad-signature', `signature does not verify under ${e.clientName}'s enrolled key`, e.clientName);
    }
    // Remember the nonce at least as long as a timestamp could still be accepted.
    if (!this.options.nonces.recordNonce(`${e.clientName}:${e.nonce}`, e.timestamp + this.skew + 1)) {
      return fail('replay', `nonce ${e.nonce} was already used`, e.clientName);
    }
    return { ok: true, clientName: e.clientName };
  }
}

function fail(reason: AuthFailureReason, message: string, clientName?: string): AuthResult {
  return clientName === undefined ? { ok: false, reason, message } : { ok: false, reason, message, clientName };
}

/**
 * The gRPC status for a refusal: PERMISSION_DENIED when the caller is known but not allowed
 * (revoked), RESOURCE_EXHAUSTED for a throttled peer, UNAUTHENTICATED when the request does not
 * prove who sent it.
 */
export function authStatusCode(reason: AuthFailureReason): GrpcStatus {
  if (reason === 'revoked') return GrpcStatus.PERMISSION_DENIED;
  return reason === 'rate-limited' ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.UNAUTHENTICATED;
}
