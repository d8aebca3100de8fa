/**
 * Ed25519 identities (tweetnacl): each institution signs its requests with one, the coordinator
 * signs the federation ledger with another. Key files are written 0600 and refused on load when
 * group or others can read them (as OpenSSH does), because a readable key is a leaked key.
 */
import type { RandomBytes } from '@fedlora/tensor';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import nacl from 'tweetnacl';

/** An Ed25519 key pair with the name it was issued to. */
export interface Identity {
  name: string;
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** 64-byte tweetnacl secret key (seed || public key). Wipe with `wipeIdentity` when done. */
  secretKey: Uint8Array;
}

/** The JSON layout of a key file. */
interface IdentityFile {
  kind: 'fedlora.ed25519.v1';
  name: string;
  publicKey: string;
  seed: string;
}

const KIND = 'fedlora.ed25519.v1';

/** Draws a fresh identity from `random` (pass cryptoRandomBytes in production). */
export function generateIdentity(name: string, random: RandomBytes): Identity {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError(`name: expected a non-empty string, received ${JSON.stringify(name)}`);
  const seed = random(32);
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new RangeError(`random: expected 32 bytes, received ${seed?.length}`);
  const kp = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  return { name, publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** Base64 of a 32-byte public key, the form used in configs and the store. */
export function encodePublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new RangeError(`publicKey: expected 32 bytes, received ${publicKey?.length}`);
  return Buffer.from(publicKey).toString('base64');
}

/** Parses a base64 public key; RangeError names what was received. */
export function decodePublicKey(text: string): Uint8Array {
  if (typeof text !== 'string') throw new TypeError(`publicKey: expected a base64 string, received ${typeof text}`);
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== text.trim()) {
    throw new RangeError(`publicKey: expected 32 bytes of base64 (Ed25519), received ${JSON.stringify(text.slice(0, 60))}`);
  }
  return new Uint8Array(bytes);
}

/** Writes `identity` to `path` atomically (temp file, fsync, rename) with mode 0600. */
export function saveIdentity(path: string, identity: Identity): void {
  const file: IdentityFile = {
    kind: KIND,
    name: identity.name,
    publicKey: encodePublicKey(identity.publicKey),
    seed: Buffer.from(identity.secretKey.subarray(0, 32)).toString('base64'),
  };
  writePrivateFile(path, `${JSON.stringify(file, null, 2)}\n`);
}

/** Writes `text` to `path` readable by the owner only, atomically. */
export function writePrivateFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/**
 * Loads an identity from a key file: the JSON written by `saveIdentity`, or raw base64 of a
 * 32-byte seed or a 64-byte tweetnacl secret key. Refuses files that group or others can read.
 */
export function loadIdentity(path: string, options: { allowInsecurePermissions?: boolean } = {}): Identity {
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new RangeError(`identity key file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if ((mode & 0o077) !== 0 && !options.allowInsecurePermissions && process.platform !== 'win32') {
    throw new RangeError(`identity key file ${path}: permissions ${(mode & 0o777).toString(8)} let others read the secret key; expected 600 (run: chmod 600 ${path})`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: Partial<IdentityFile>;
    try {
      parsed = JSON.parse(trimmed) as Partial<IdentityFile>;
    } catch {
      throw new RangeError(`identity key file ${path}: expected JSON or base64, received unparsable text`);
    }
    if (parsed.kind !== KIND) throw new RangeError(`identity key file ${path}: kind: expected "${KIND}", received ${JSON.stringify(parsed.kind)}`);
    const identity = fromSecret(path, Buffer.from(parsed.seed ?? '', 'base64'), parsed.name ?? '');
    if (parsed.publicKey !== undefined && parsed.publicKey !== encodePublicKey(identity.publicKey)) {
      throw new RangeError(`identity key file ${path}: publicKey does not match the secret seed; the file is damaged`);
    }
    return identity;
  }
  return fromSecret(path, Buffer.from(trimmed, 'base64'), '');
}

function fromSecret(path: string, bytes: Buffer, name: string): Identity {
  if (bytes.length === 32) {
    const kp = nacl.sign.keyPair.fromSeed(new Uint8Array(bytes));
    bytes.fill(0);
    return { name, publicKey: kp.publicKey, secretKey: kp.secretKey };
  }
  if (bytes.length === 64) {
    const kp = nacl.sign.keyPair.fromSecretKey(new Uint8Array(bytes));
    bytes.fill(0);
    return { name, publicKey: kp.publicKey, secretKey: kp.secretKey };
  }
  throw new RangeError(`identity key file ${path}: expected a 32-byte seed or 64-byte secret key, received ${bytes.length} bytes`);
}

/** Overwrites the secret key in memory (call when the identity is no longer needed). */
export function wipeIdentity(identity: Identity): void {
  identity.secretKey.fill(0);
}
