/**
 * Typed protocol errors. Every rejection names the check that failed (`check`) so callers,
 * logs and tests can tell a replay from a forgery without parsing prose, and messages never
 * contain key material, shares or masked values (only ids, stages, rounds and lengths).
 */

/** The name of the check that rejected a message or aborted a round. */
export type SecAggCheck =
  | 'version' // unknown wire-format version byte
  | 'format' // malformed bytes, JSON, field type or length
  | 'stage' // message does not belong to the current stage
  | 'round' // message bound to another round
  | 'session' // message bound to another session id (replay across sessions)
  | 'sender' // sender unknown, not in the cohort, or not the claimed author
  | 'duplicate' // second message from the same sender in one stage, or duplicate key
  | 'signature' // Ed25519 signature does not verify
  | 'decrypt' // box authentication failed or a decrypted share is bound to other parties
  | 'key-reuse' // public key already used in an earlier round
  | 'key' // degenerate public key (low-order point)
  | 'params' // k, t, dim or chunk layout unacceptable
  | 'graph' // neighbourhood inconsistent with the agreed graph
  | 'alive-and-dropped' // unmask request lists a client as both alive and dropped
  | 'consistency' // survivor set not signed by enough neighbours, or changed after signing
  | 'threshold' // fewer survivors than the threshold needs: the round cannot finish
  | 'reconstruction' // a reconstructed secret does not match its public commitment
  | 'chunk' // masked-input chunk out of order, out of range or misaligned
  | 'aborted'; // the round was already aborted

/** A message was refused or the round cannot continue; `check` says which rule failed. */
export class SecAggError extends Error {
  override name = 'SecAggError';
  constructor(
    readonly check: SecAggCheck,
    message: string,
  ) {
    super(`secagg ${check} check failed: ${message}`);
  }
}

/** Throws `SecAggError(check, message)` unless `cond` holds. */
export function ensure(cond: unknown, check: SecAggCheck, message: string | (() => string)): asserts cond {
  if (!cond) throw new SecAggError(check, typeof message === 'function' ? message() : message);
}
