import * as grpc from '@grpc/grpc-js';
import type { FederationErrorCode } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import { ChunkStreamError } from '@fedlora/tensor';
import { UploadIntegrityError } from './upload-session.js';
import { UploadDeadlineError } from './upload-stream-guard.js';

const TO_STATUS: Record<FederationErrorCode, grpc.status> = {
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'permission-denied': grpc.status.PERMISSION_DENIED,
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
  'already-exists': grpc.status.ALREADY_EXISTS,
  'resource-exhausted': grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
};

/**
 * Longest status message sent, in UTF-16 code units. Messages echo client input (a name, a
 * federation id); grpc-js percent-encodes the message into an HTTP/2 trailer, and a trailer over
 * the peer's header-list limit is never delivered: the call hangs and the connection breaks.
 */
export const MAX_STATUS_DETAILS = 1024;

/** `details` cut to MAX_STATUS_DETAILS (never inside a surrogate pair, which encodeURI would reject). */
export function clipDetails(details: string): string {
  if (details.length <= MAX_STATUS_DETAILS) return details;
  let head = details.slice(0, MAX_STATUS_DETAILS - 40);
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}... (${details.length - head.length} more characters)`;
}

/**
 * The one place where errors become gRPC statuses. Only the project's typed errors say whose
 * fault a refusal is: a FederationError carries its code (request validation throws
 * 'invalid-argument'), UploadIntegrityError is DATA_LOSS, ChunkStreamError a malformed chunk
 * stream, UploadDeadlineError an upload stream the coordinator ended (DEADLINE_EXCEEDED).
 * Anything else, a plain RangeError or TypeError included, is our own bug: INTERNAL with a
 * generic message, so a coordinator bug never reaches a client as the client's fault, and stack
 * traces and internal state never reach it at all (#11 §6).
 */
export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof FederationError) return { code: TO_STATUS[err.code], details: clipDetails(err.message) };
  if (err instanceof UploadIntegrityError) return { code: grpc.status.DATA_LOSS, details: clipDetails(err.message) };
  if (err instanceof ChunkStreamError) return { code: grpc.status.INVALID_ARGUMENT, details: clipDetails(err.message) };
  if (err instanceof UploadDeadlineError) return { code: grpc.status.DEADLINE_EXCEEDED, details: clipDetails(err.message) };
  return { code: grpc.status.INTERNAL, details: 'internal error (see the coordinator log)' };
}

/** The inverse, on the client: a gRPC error becomes a FederationError with the matching code. */
export function fromServiceError(err: unknown): Error {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code !== 'number') return err instanceof Error ? err : new Error(String(err));
  // grpc-js appends an empty "Resolution note:" to connection failures; it says nothing.
  const details = (e.details ?? e.message ?? 'unknown error').replace(/\s*Resolution note:\s*$/, '');
  for (const [code, status] of Object.entries(TO_STATUS)) {
    if (status === e.code) return new FederationError(code as FederationErrorCode, details);
  }
  if (e.code === grpc.status.DEADLINE_EXCEEDED || e.code === grpc.status.CANCELLED) return new FederationError('unavailable', details);
  if (e.code === grpc.status.DATA_LOSS) return new UploadIntegrityError(details, false);
  return new Error(`coordinator error (${grpc.status[e.code] ?? e.code}): ${details}`);
}
