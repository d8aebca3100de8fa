// Identity, request authentication and TLS for the gRPC transport.
/** Ed25519 identities: generate, encode, save (0600) and load key files. */
export { generateIdentity, encodePublicKey, decodePublicKey, saveIdentity, loadIdentity, wipeIdentity, writePrivateFile, type Identity } from './identity.js';
/** Signed request envelopes bound to federation, client, round, method, body hash, nonce and time. */
export { signRequest, verifyRequestSignature, canonicalRequestBytes, envelopeProblem, hashBody, newNonce, type RequestEnvelope } from './request-signing.js';
/** Replay protection: the NonceCache interface (the store satisfies it) and an in-memory cache. */
export { MemoryNonceCache, type NonceCache, type MemoryNonceCacheOptions } from './nonce-cache.js';
/** Ed25519 verification with node:crypto (the coordinator's hot path; signing stays tweetnacl). */
export { ed25519Verify, ed25519PublicKeyObject } from './ed25519-verify.js';
/** Per-peer throttle on failed signature checks (a forged-request flood costs a lookup each). */
export { SignatureFailureLimiter, type SignatureFailureLimiterOptions } from './peer-rate-limit.js';
/** Server-side verification with typed refusal reasons, and their gRPC status codes. */
export {
  RequestVerifier,
  authStatusCode,
  type AuthResult,
  type AuthFailureReason,
  type IdentityDirectory,
  type RequestVerifierOptions,
  type ExpectedRequest,
} from './request-verifier.js';
/** The envelope carried in gRPC metadata. */
export { signedMetadata, envelopeFromMetadata, AUTH_METADATA_KEYS } from './auth-metadata.js';
/** Client side: signs each call's metadata with a fresh nonce. */
export { createRequestSigner, type RequestSigner, type RequestSignerOptions } from './request-signer.js';
/** Server side: verifies one call (envelope from metadata, method from the call, mTLS name binding). */
export { authenticateCall, type AuthenticatableCall, type AuthenticateOptions } from './call-authenticator.js';
/** grpc-js credentials from PEM strings or files; loud insecure variants; the mTLS peer name. */
export {
  serverCredentials,
  channelCredentials,
  loadServerCredentials,
  loadChannelCredentials,
  insecureServerCredentials,
  insecureChannelCredentials,
  peerCertificateCommonName,
  INSECURE_WARNING,
  type ServerTlsPem,
  type ChannelTlsPem,
  type TlsFiles,
} from './tls-credentials.js';
/** The federation PKI: CA, server and client certificates (ECDSA P-256), PEM. */
export { createCertificateAuthority, issueCertificate, signLeafCertificate, describeCertificate, type PemPair, type IssueOptions, type LeafOptions } from './pki.js';
/** Enrolment requests: an institution's own keys, sent as a CSR plus its Ed25519 public key (the operator never holds its private keys). */
export {
  createEnrolmentRequest,
  verifyEnrolmentRequest,
  issueFromRequest,
  enrolmentFingerprint,
  enrolmentSigningBytes,
  ENROLMENT_REQUEST_KIND,
  type EnrolmentRequest,
} from './certificate-request.js';
