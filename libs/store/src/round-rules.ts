/** Rules shared by every store implementation: round transitions and argument checks. */
import { createHash } from 'node:crypto';
import { StoreError } from './store-error.js';
import type { RoundState } from './types.js';

/** States from which a round can still move; `committed` and `aborted` are terminal. */
export const OPEN_ROUND_STATES: readonly RoundState[] = ['planned', 'training', 'aggregating'];

const ORDER: Record<RoundState, number> = { planned: 0, training: 1, aggregating: 2, committed: 3, aborted: 3 };

/** True when `state` is not terminal. */
export function isOpenState(state: RoundState): boolean {
  return OPEN_ROUND_STATES.includes(state);
}

/** Throws unless a round may move from `from` to `to` (forward only; abort from any open state). */
export function assertTransition(round: number, from: RoundState, to: RoundState): void {
  if (!isOpenState(from)) {
    throw new StoreError('invalid-state', `round ${round}: cannot move to "${to}", the round is already "${from}"`);
  }
  if (to !== 'aborted' && ORDER[to] < ORDER[from]) {
    throw new StoreError('invalid-state', `round ${round}: cannot move back from "${from}" to "${to}"`);
  }
}

/** Validates a round number: an integer >= 0. */
export function assertRoundNumber(round: unknown): asserts round is number {
  if (typeof round !== 'number' || !Number.isInteger(round)) {
    throw new TypeError(`round: expected an integer, received ${JSON.stringify(round)}`);
  }
  if (round < 0) throw new RangeError(`round: expected an integer >= 0, received ${round}`);
}

/** Validates a non-empty string argument. */
export function assertNonEmpty(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name}: expected a string, received ${typeof value}`);
  if (value.length === 0) throw new RangeError(`${name}: expected a non-empty string, received ""`);
}

/** Validates an Ed25519 public key in base64 (32 bytes). */
export function assertPublicKey(publicKey: unknown): asserts publicKey is string {
  assertNonEmpty('publicKey', publicKey);
  const bytes = Buffer.from(publicKey, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== publicKey) {
    throw new RangeError(`publicKey: expected 32 bytes in base64 (Ed25519), received ${JSON.stringify(publicKey.slice(0, 60))}`);
  }
}

/** Hex SHA-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Throws unless `sha256` is the hex SHA-256 of `bytes` (a checkpoint must never be stored mislabelled). */
export function assertChecksum(round: number, bytes: Uint8Array, sha256: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`checkpoint: expected a Uint8Array, received ${typeof bytes}`);
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new RangeError(`sha256: expected 64 lowercase hex digits, received ${JSON.stringify(sha256)}`);
  }
  const actual = sha256Hex(bytes);
  if (actual !== sha256) {
    throw new RangeError(`round ${round}: checkpoint sha256 mismatch: expected ${sha256}, computed ${actual}`);
  }
}

/** Validates that a ledger line is a single line of JSON. */
export function assertLedgerLine(line: unknown): asserts line is string {
  assertNonEmpty('ledgerLine', line);
  if (line.includes('\n')) throw new RangeError('ledgerLine: expected a single line, received text containing a newline');
  try {
    JSON.parse(line);
  } catch {
    throw new RangeError(`ledgerLine: expected JSON, received ${JSON.stringify(line.slice(0, 60))}`);
  }
}
