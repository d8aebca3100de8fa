/**
 * Server side of request authentication for one gRPC call: reads the signed envelope from the
 * call's metadata, takes the method from the call itself and, with mTLS, the name of the
 * certificate the peer presented, and verifies them together: the certificate must belong to the
 * client that signed, checked before the signature (#16 finding 5). Failed signatures are counted
 * per peer (its certificate name, else its address and claimed name) to throttle forgers. The
 * caller turns a refusal into `authStatusCode(reason)` and an audit record.
 */
import type { Metadata } from '@grpc/grpc-js';
import { envelopeFromMetadata } from './auth-metadata.js';
import type { AuthResult, ExpectedRequest, RequestVerifier } from './request-verifier.js';

/** The parts of a grpc-js server call the authenticator reads. */
export interface AuthenticatableCall {
  metadata: Metadata;
  getPath(): string;
  getAuthContext?(): { sslPeerCertificate?: { subject?: unknown } } | null;
  /** The remote address, e.g. "127.0.0.1:50123" or "[::1]:50123". */
  getPeer?(): string;
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
  const subject = call.getAuthContext?.()?.sslPeerCertificate?.subject as { CN?: string | string[] } | undefined;
  const cn = Array.isArray(subject?.CN) ? subject.CN[0] : subject?.CN;
  const tlsClientName = cn !== undefined && (bindTlsIdentity ?? true) ? cn : undefined;
  // The certificate name is the peer when there is one (the binding above makes it the signer);
  // otherwise the address, with the claimed name so one address cannot throttle every client behind it.
  const peer = cn !== undefined ? `cert:${cn}` : `addr:${peerHost(call.getPeer?.() ?? '')}/${typeof envelope.clientName === 'string' ? envelope.clientName : ''}`;
  return verifier.verify(envelope, signature, { ...expected, method, tlsClientName, peer });
}

/** The host part of a grpc-js peer string ("1.2.3.4:5678", "[::1]:5678", "ipv4:1.2.3.4:5678"). */
function peerHost(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, '');
  const colon = p.lastIndexOf(':');
  return colon > 0 ? p.slice(0, colon) : p;
}
