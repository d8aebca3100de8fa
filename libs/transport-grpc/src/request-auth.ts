/**
 * Per-request authentication at the gRPC edge, in one place: every RPC of the Federation service
 * carries a signed envelope in its metadata (see security/auth-metadata.ts); the server verifies
 * it before the handler touches the federation core.
 *
 * What the signature covers, per call shape:
 * - unary calls and DownloadAdapter (one request message): the SHA-256 of the exact request bytes
 *   received on the wire, captured by wrapping the service's deserializers;
 * - UploadUpdate (a client stream): the envelope is checked against the *first* message, the
 *   header (client, round, plan nonce, tensor layout, session token, upload id). The chunks that
 *   follow are not individually signed: they ride on the same authenticated stream (TLS protects
 *   them in transit) and are checked against the header's layout, per-chunk offsets and the round,
 *   and in resumable uploads against their SHA-256. Each resumed stream is a new signed call.
 *
 * Besides the verifier's checks (enrolment, revocation read from the store at every call,
 * signature, clock skew, method, round, body, nonce replay), the signer must be the client the
 * request names: nobody can act on another client's session even with its token.
 */
import type * as grpc from '@grpc/grpc-js';
import { FederationError } from '@fedlora/federation';
import { authenticateCall, type AuthenticatableCall } from './security/call-authenticator.js';
import { hashBody } from './security/request-signing.js';
import type { AuthFailureReason, RequestVerifier } from './security/request-verifier.js';

/** A request refused by authentication; `reason` feeds the audit log and metrics. */
export class RequestRefusedError extends FederationError {
  override name = 'RequestRefusedError';
  constructor(
    readonly reason: AuthFailureReason | 'unsigned',
    message: string,
  ) {
    super(reason === 'revoked' ? 'permission-denied' : reason === 'rate-limited' ? 'resource-exhausted' : 'unauthenticated', message);
  }
}

const BODY_HASH = Symbol('fedlora.requestBodySha256');

/** The hex SHA-256 of the wire bytes a request was decoded from, when captured. */
export function capturedBodyHash(request: unknown): string | undefined {
  return typeof request === 'object' && request !== null ? (request as { [BODY_HASH]?: string })[BODY_HASH] : undefined;
}

/**
 * Returns `def` with deserializers that remember the SHA-256 of each request's bytes (a hidden
 * symbol property). Upload chunks are not hashed: only the header message is signed.
 */
export function withRequestBodyHashes(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        const value = m.requestDeserialize(bytes) as unknown;
        if (typeof value === 'object' && value !== null && !(value as { chunk?: unknown }).chunk) {
          Object.defineProperty(value, BODY_HASH, { value: hashBody(bytes), enumerable: false });
        }
        return value;
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** What a request claims about itself, to be matched against its signature. */
export interface RequestClaim {
  /**
   * The round field of the request (0 when it has none); undefined only for a body that could not
   * be decoded (it claims nothing), so the signed round is not checked.
   */
  round: number | undefined;
  /**
   * The client the request names (clientName at Register, clientId otherwise); undefined when the
   * request names none (GetStatus, an undecodable body): any enrolled signer is accepted.
   */
  client: string | undefined;
  /** The request message the signature's body hash must cover. */
  request: unknown;
}

/** Verifies one call; throws RequestRefusedError. Returns the verified signer, or undefined when the method is served unsigned. */
export type RequestGate = (call: AuthenticatableCall, method: string, claim: RequestClaim) => string | undefined;

/** Options of `createRequestGate`. */
export interface RequestGateOptions {
  verifier: RequestVerifier;
  /**
   * Short method names served without a signature (default: none). GetStatus is not here: the
   * server answers it unsigned with names redacted, and in full to a signed caller (status-view.ts).
   */
  unsignedMethods?: readonly string[];
}

/** Builds the gate the server runs at the start of every RPC. */
export function createRequestGate(o: RequestGateOptions): RequestGate {
  const unsigned = new Set(o.unsignedMethods ?? []);
  return (call, method, claim) => {
    if (unsigned.has(method)) return undefined;
    const bodyHash = capturedBodyHash(claim.request);
    if (bodyHash === undefined) throw new RequestRefusedError('malformed', `${method}: the request body could not be hashed for verification`);
    const r = authenticateCall(call, o.verifier, { round: claim.round, bodyHash });
    if (!r.ok) throw new RequestRefusedError(r.reason, `${method} refused: ${r.message}`);
    if (claim.client !== undefined && r.clientName !== claim.client) {
      throw new RequestRefusedError('mismatch', `${method} refused: the request names client ${JSON.stringify(claim.client)} but was signed by ${JSON.stringify(r.clientName)}`);
    }
    return r.clientName;
  };
}
