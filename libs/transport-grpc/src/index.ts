// gRPC server front of a FederationCoordinator.
export type { FederationServerOptions, RunningServer } from './server.js';
export { startFederationServer } from './server.js';
// Client connection implementing CoordinatorConnection over gRPC.
export type { GrpcConnectionOptions } from './client.js';
export { GrpcConnection, createSharedChannel } from './client.js';
// Resumable, hash-verified uploads: the server's registry of partial uploads and the client's retry policy.
export { UploadRegistry, DEFAULT_MAX_UPLOAD_BYTES, type UploadRegistryOptions, type UploadLease } from './upload-registry.js';
export { UploadSession, UploadIntegrityError } from './upload-session.js';
export { DEFAULT_UPLOAD_RETRY, chunksToSend, tensorDigests, isRetryableUploadError, uploadBackoffMs, type UploadRetryPolicy } from './resumable-upload.js';
// Per-request authentication at the server edge (signed envelopes verified before any handler).
export { RequestRefusedError, createRequestGate, withRequestBodyHashes, capturedBodyHash, type RequestGate, type RequestGateOptions, type RequestClaim } from './request-auth.js';
// Wire contract loading and the one error translation.
export { loadFederationPackage, federationService, PROTO_LOADER_OPTIONS } from './proto.js';
export { toServiceError, fromServiceError } from './status-map.js';
// Serde (exported for tests and interop tools).
export * as serde from './serde.js';
// Identities, signed requests, replay protection, TLS credentials and the federation PKI.
export * from './security/index.js';
