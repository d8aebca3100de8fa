/**
 * Why the federation core refused a request. The transport maps each code to one gRPC status in
 * one place (transport-grpc/status-map.ts); messages never carry secrets.
 */
export type FederationErrorCode =
  | 'unauthenticated' // unknown client id or bad session token
  | 'permission-denied' // known client, not allowed (revoked, not in cohort)
  | 'invalid-argument' // malformed or inconsistent request (shapes, NaN/Inf, sizes)
  | 'failed-precondition' // valid request at the wrong time (stale round, wrong nonce, closed round)
  | 'already-exists' // duplicate upload for a round
  | 'resource-exhausted' // too many clients or too large a message
  | 'unavailable'; // coordinator shutting down

/** Typed error of the federation core. */
export class FederationError extends Error {
  override name = 'FederationError';
  constructor(
    readonly code: FederationErrorCode,
    message: string,
  ) {
    super(message);
  }
}
