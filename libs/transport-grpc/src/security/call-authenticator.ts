/**
 * Server side of request authentication for one gRPC call: reads the signed envelope from the
 * call's metadata, takes the method from the call itself, verifies it, and (with mTLS) checks
 * that the certificate the peer presented belongs to the same client that signed. The caller
 * turns a refusal into `authStatusCode(reason)` and an audit record.
 */
import type { Metadata } from '@grpc/grpc-js';
import { envelopeFromMetadata } from './auth-metadata.js';
import type { AuthResult, ExpectedRequest, RequestVerifier } from './request-verifier.js';

/** The parts of a grpc-js server call the authenticator reads. */
export interface AuthenticatableCall {
  metadata: Metadata;
  getPath(): string;
  getAuthContext?(): { sslPeerCertificate?: { subject?: unknown } } | null;
}

/** Options of `authenticateCall`. */
export interface AuthenticateOptions extends Omit<ExpectedRequest, 'method'> {
  /** Require the mTLS client certificate's CN to equal the signing client's name (default true when a certificate is present). */
  bindTlsIdentity?: boolean;
}

/** Verifies the signed envelope of `call`; see AuthResult for the refusal reasons. */
export function authenticateCall(call: AuthenticatableCall, verifier: RequestVerifier, options: AuthenticateOptions = {}): AuthResult {
  const method = call.getPath();
  const { envelope, signature } = envelopeFromMetadata(call.metadata, method);
  const { bindTlsIdentity, ...expected } = options;
  const result = verifier.verify(envelope, signature, { ...expected, method });
  if (!result.ok) return result;
  const subject = call.getAuthContext?.()?.sslPeerCertificate?.subject as { CN?: string | string[] } | undefined;
  const cn = Array.isArray(subject?.CN) ? subject.CN[0] : subject?.CN;
  if (cn !== undefined && (bindTlsIdentity ?? true) && cn !== result.clientName) {
    return { ok: false, reason: 'mismatch', message: `the TLS client certificate belongs to ${JSON.stringify(cn)} but the request was signed by ${JSON.stringify(result.clientName)}`, clientName: result.clientName };
  }
  return result;
}
