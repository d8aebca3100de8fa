import { createHash } from 'node:crypto';
import { cryptoRandomBytes, type RandomBytes } from '@fedlora/tensor';
import nacl from 'tweetnacl';
import type { PrivacyEvent } from './accountant.js';
import type { NoiseCalibration } from './calibration.js';
import type { Conversion } from './conversion.js';
import type { PrivacyUnit } from './privacy-unit.js';
import type { RoundPrivacyParams } from './round-events.js';

/**
 * The ledger's on-disk format: one JSON object per line (JSONL). Each entry carries the hash of
 * the previous line and an Ed25519 signature (tweetnacl) over its own canonical JSON without the
 * signature field, so any edit, deletion, insertion or reordering breaks the chain or a signature.
 */

/** Format version written into every entry. */
export const LEDGER_VERSION = 1;

/** prevHash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** What a ledger entry records about a release (or a non-release). */
export interface LedgerRecordInput {
  /** round: a release; aborted: a round that released nothing; refused: the client declined (budget). */
  kind: 'round' | 'aborted' | 'refused';
  round: number;
  /** Privacy unit (privacy-unit.ts): institution (DP-FedAvg) or, for DP-SGD, document, field or sequence. */
  unit: PrivacyUnit;
  /** With unit `field`: the field whose value defines a unit (e.g. `patient_id`). */
  unitField?: string;
  /** Mechanism parameters; the auditor re-derives `events` from them. Absent for aborted/refused. */
  params?: RoundPrivacyParams;
  /** Accountant events of this entry; defaults to roundEvents(params) (or [] without params). */
  events?: PrivacyEvent[];
  /** The subject this privacy is spent for, e.g. a client id (optional for federation ledgers). */
  subject?: string;
  /** Budget of this ledger's privacy unit, if one is enforced. */
  budget?: { epsilon: number; delta: number };
  /** Caller-supplied timestamp (time is a parameter, never read here). */
  time?: string;
  /** Free-form note (e.g. why a round was aborted). */
  note?: string;
  /**
   * Budget first: how the noise multiplier was chosen (target epsilon, delta, the multiplier found,
   * the planned steps, sampling rate and units it assumed), when it was calibrated rather than given.
   */
  calibration?: NoiseCalibration;
  /**
   * Which attempt of the round this entry is about (`attemptId`: a hash of the round and the
   * plan's nonce). Both the federation's and the institutions' entries carry it, so the audit
   * matches an institution's release to the federation entry of the same attempt: an aborted
   * attempt of a round cannot stand in for a completed one that was removed.
   */
  attempt?: string;
  /**
   * Institutions' entries: the federation ledger's head (entries and hash of its last line) as
   * the plan announced it. The audit checks that the federation ledger it is given has that
   * prefix, so a truncated or forked federation ledger is caught by any institution's ledger.
   */
  federationHead?: LedgerHead;
}

/** A ledger's head: how many entries it has and the SHA-256 of its last line (GENESIS_HASH when empty). */
export interface LedgerHead {
  entries: number;
  hash: string;
}

/** A ledger line as written. */
export interface LedgerEntry extends Omit<LedgerRecordInput, 'events'> {
  version: number;
  seq: number;
  writer: string;
  role: 'coordinator' | 'client';
  publicKey: string;
  prevHash: string;
  events: PrivacyEvent[];
  delta: number;
  orders: number[];
  conversion: Conversion;
  /** Cumulative RDP curve after this entry, at `orders`. */
  cumulativeRdp: number[];
  /** Cumulative epsilon at `delta` after this entry. */
  epsilon: number;
  signature: string;
}

/** JSON with object keys sorted recursively: the byte string that is signed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError(`canonicalJson: non-finite number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** SHA-256 (hex) of a ledger line's exact text (without the newline). */
export function lineHash(line: string): string {
  return createHash('sha256').update(line, 'utf8').digest('hex');
}

/** Hex encoding. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Hex decoding (throws on malformed input). */
export function fromHex(s: string, what: string): Uint8Array {
  if (typeof s !== 'string' || !/^[0-9a-f]*$/i.test(s) || s.length % 2 !== 0) throw new TypeError(`${what} must be hex, received ${JSON.stringify(s)}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** The bytes an entry's signature covers: canonical JSON of the entry without `signature`. */
export function signedBytes(entry: Omit<LedgerEntry, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...rest } = entry;
  return new TextEncoder().encode(canonicalJson(rest));
}

/** Signs an entry with a 64-byte nacl Ed25519 secret key; returns the hex signature. */
export function signEntry(entry: Omit<LedgerEntry, 'signature'>, secretKey: Uint8Array): string {
  return toHex(nacl.sign.detached(signedBytes(entry), secretKey));
}

/** True when the entry's signature verifies under its publicKey. */
export function verifyEntrySignature(entry: LedgerEntry): boolean {
  try {
    return nacl.sign.detached.verify(signedBytes(entry), fromHex(entry.signature, 'signature'), fromHex(entry.publicKey, 'publicKey'));
  } catch {
    return false;
  }
}

/** A fresh Ed25519 identity for a ledger writer, seeded from rng (cryptoRandomBytes in production). */
export function generateLedgerKey(rng: RandomBytes = cryptoRandomBytes): { publicKey: string; secretKey: Uint8Array } {
  return ledgerKeyFromSeed(rng(32));
}

/** Deterministic identity from a 32-byte seed (tests, provisioning from stored seeds). */
export function ledgerKeyFromSeed(seed: Uint8Array): { publicKey: string; secretKey: Uint8Array } {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new RangeError(`seed must be 32 bytes, received ${seed?.length}`);
  const kp = nacl.sign.keyPair.fromSeed(seed);
  return { publicKey: toHex(kp.publicKey), secretKey: kp.secretKey };
}
