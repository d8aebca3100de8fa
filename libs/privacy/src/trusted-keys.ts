import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The auditor's trust anchor: which Ed25519 public key signs each ledger writer's entries. A
 * ledger carries its writer's public key, but anyone who rewrites a ledger can re-sign it with a
 * fresh key and write that key in, so `fedlora audit` only says VALID when every writer's key is
 * one it was given out of band, in this file (written by `fedlora provision` from the enrolled
 * institutions' and the coordinator's public keys; no private key is ever needed to write it).
 *
 * Format: one JSON object, writer name -> public key (32 bytes, hex or base64), e.g.
 * `{"coordinator": "q83v...=", "hospital-a": "9f1c..."}`.
 */

/** The file name provisioning writes for the auditor (next to the other public material). */
export const TRUSTED_KEYS_FILE = 'trusted-keys.json';

/** A trusted key given as hex (64 digits) or base64, as lowercase hex; undefined when it is not a 32-byte key. */
export function trustedKeyHex(k: string): string | undefined {
  if (/^[0-9a-f]{64}$/i.test(k)) return k.toLowerCase();
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(k)) return undefined;
  const raw = Buffer.from(k, 'base64');
  return raw.length === 32 ? raw.toString('hex') : undefined;
}

/** Checks a writer -> key map; throws TypeError naming the first bad entry. */
export function validateTrustedKeys(v: unknown, what = 'trusted keys'): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${what}: expected a JSON object {"writer": "Ed25519 public key (hex or base64)"}, received ${Array.isArray(v) ? 'an array' : typeof v}`);
  const out: Record<string, string> = {};
  for (const [writer, key] of Object.entries(v)) {
    if (writer === '') throw new TypeError(`${what}: a writer name is empty`);
    if (typeof key !== 'string' || trustedKeyHex(key) === undefined) throw new TypeError(`${what}: the key of "${writer.slice(0, 64)}" is not a 32-byte Ed25519 public key in hex or base64`);
    out[writer] = key;
  }
  if (Object.keys(out).length === 0) throw new TypeError(`${what}: no keys (an empty trust anchor would trust nothing)`);
  return out;
}

/** The text of a trusted-keys file (checked, writers sorted), for writers that place files themselves (provisioning). */
export function trustedKeysJson(keys: Record<string, string>): string {
  const valid = validateTrustedKeys(keys);
  const sorted = Object.fromEntries(Object.entries(valid).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/** Writes the auditor's trusted keys (public keys only; readable by anyone). */
export function writeTrustedKeys(path: string, keys: Record<string, string>): void {
  const text = trustedKeysJson(keys);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o644 });
}

/** Reads and checks a trusted-keys file; throws naming the file and what is wrong. */
export function readTrustedKeys(path: string): Record<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new TypeError(`${path}: ${(err as Error).message}`);
  }
  return validateTrustedKeys(v, path);
}
