import { createHash, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import type { RandomBytes } from '@fedlora/tensor';
import { SecAggError } from './errors.js';

/**
 * Key agreement, key derivation and signatures for SecAgg+ (Bonawitz et al. 2017, Sec. 4;
 * Bell et al. 2020, Alg. 2). X25519 keys are generated with tweetnacl (`nacl.box.keyPair`), the
 * Diffie-Hellman itself runs in node:crypto's X25519 (same function, RFC 7748, identical output
 * to `nacl.scalarMult`, about 20x faster: it sits on the client's masking path once per
 * neighbour). Derivation is HKDF-SHA256 (RFC 5869) with the session id as salt and a label that
 * names the purpose and the ordered pair, so no two masks in or across sessions share a key.
 */

/** An X25519 key pair (32-byte secret, 32-byte public). */
export type X25519KeyPair = { publicKey: Uint8Array; secretKey: Uint8Array };

/** Domain-separation prefix for everything this protocol hashes, derives or signs. */
export const PROTOCOL_LABEL = 'fedlora-secagg-v1';

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

const PUBLIC_CACHE_LIMIT = 4096;
const publicKeyObjects = new Map<string, KeyObject>();

/**
 * Parsed public-key objects, cached by (algorithm, key bytes): importing a DER key costs as much
 * as the X25519 multiplication or Ed25519 verification itself, and identities and neighbours'
 * keys are used over and over. Only public keys are cached.
 */
function publicKeyObject(prefix: Buffer, publicKey: Uint8Array): KeyObject {
  const id = `${prefix.toString('hex')}:${Buffer.from(publicKey).toString('hex')}`;
  let key = publicKeyObjects.get(id);
  if (!key) {
    if (publicKeyObjects.size >= PUBLIC_CACHE_LIMIT) publicKeyObjects.clear();
    key = createPublicKey({ key: Buffer.concat([prefix, publicKey]), format: 'der', type: 'spki' });
    publicKeyObjects.set(id, key);
  }
  return key;
}

/** The X25519 public key of a 32-byte secret key (RFC 7748 clamping applied inside, as in nacl.scalarMult.base). */
export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32) throw new RangeError(`x25519PublicKey: secret key must be 32 bytes, received ${secretKey.length}`);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secretKey]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** Fresh X25519 key pair from `rng` (the same pair as nacl.box.keyPair.fromSecretKey, computed in node:crypto). */
export function generateX25519(rng: RandomBytes): X25519KeyPair {
  const secretKey = rng(32).slice();
  return { publicKey: x25519PublicKey(secretKey), secretKey };
}

/**
 * X25519 with one secret key against many public keys: parses the secret key once (the DER
 * import costs as much as the multiplication). Rejects the all-zero output that a low-order
 * public key forces (RFC 7748 Sec. 6.1), so nobody can pin a pairwise mask to a known value.
 */
export function x25519Agreer(secretKey: Uint8Array): (publicKey: Uint8Array) => Uint8Array {
  if (secretKey.length !== 32) throw new RangeError(`x25519Agree: secret key must be 32 bytes, received ${secretKey.length}`);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secretKey]), format: 'der', type: 'pkcs8' });
  return (publicKey) => {
    if (publicKey.length !== 32) throw new RangeError(`x25519Agree: public key must be 32 bytes, received ${publicKey.length}`);
    let pub: KeyObject;
    try {
      pub = publicKeyObject(SPKI_X25519, publicKey);
    } catch {
      throw new SecAggError('key', 'X25519 public key could not be parsed');
    }
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey: priv, publicKey: pub });
    } catch {
      throw new SecAggError('key', 'X25519 agreement failed on a degenerate public key');
    }
    if (shared.every((b) => b === 0)) throw new SecAggError('key', 'X25519 agreement produced the all-zero secret (low-order public key)');
    const out = new Uint8Array(shared);
    shared.fill(0);
    return out;
  };
}

/** X25519(secretKey, publicKey): see `x25519Agreer`. */
export function x25519Agree(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (secretKey.length !== 32 || publicKey.length !== 32) {
    throw new RangeError(`x25519Agree: keys must be 32 bytes, received ${secretKey.length} and ${publicKey.length}`);
  }
  return x25519Agreer(secretKey)(publicKey);
}

/** HKDF-SHA256(ikm, salt, info) -> `length` bytes (RFC 5869). */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string | Uint8Array, length = 32): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, typeof info === 'string' ? Buffer.from(info, 'utf8') : info, length));
}

/** Big-endian u32 bytes (for hashing and signing integers canonically). */
export function u32be(x: number): Uint8Array {
  if (!Number.isInteger(x) || x < 0 || x >= 2 ** 32) throw new RangeError(`u32be: expected an integer 0..2^32-1, received ${x}`);
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x);
  return b;
}

/** Concatenates byte strings, with UTF-8 for string parts. */
export function concatBytes(...parts: Array<Uint8Array | string>): Uint8Array {
  const bufs = parts.map((p) => (typeof p === 'string' ? new Uint8Array(Buffer.from(p, 'utf8')) : p));
  const out = new Uint8Array(bufs.reduce((s, b) => s + b.length, 0));
  let o = 0;
  for (const b of bufs) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/** One advertised key set, as bound into the session id and signed by the client. */
export type AdvertisedKeys = { clientId: number; cPk: Uint8Array; sPk: Uint8Array; bCommit: Uint8Array };

/** The bytes a client signs with its Ed25519 identity when advertising its keys for `round`. */
export function advertiseSigningBytes(round: number, keys: AdvertisedKeys): Uint8Array {
  return concatBytes(`${PROTOCOL_LABEL}/advertise`, u32be(round), u32be(keys.clientId), keys.cPk, keys.sPk, keys.bCommit);
}

/**
 * Session id = SHA-256(label, round, every advertised key set sorted by client id). Binding all
 * masks, shares and signatures to it makes messages from another round or another key set
 * unusable (replay protection) and lets every client detect a server that showed different
 * keys, or a different round configuration (cohort, k, t, dim, graph seed: `configDigest`), to
 * different clients: their session ids differ, so shares fail their binding check and masks
 * would not cancel.
 */
export function computeSessionId(round: number, keys: readonly AdvertisedKeys[], configDigest: Uint8Array = new Uint8Array(32)): Uint8Array {
  const h = createHash('sha256').update(`${PROTOCOL_LABEL}/session`).update(u32be(round)).update(configDigest);
  // The id through one scratch buffer (update copies it): no 4-byte array per cohort member.
  const id = Buffer.alloc(4);
  for (const k of [...keys].sort((a, b) => a.clientId - b.clientId)) {
    id.writeUInt32BE(k.clientId);
    h.update(id).update(k.cPk).update(k.sPk).update(k.bCommit);
  }
  return new Uint8Array(h.digest());
}

/** SHA-256 of the canonical round-configuration message bytes, bound into the session id. */
export function digest(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${PROTOCOL_LABEL}/config`).update(bytes).digest());
}

/** Public commitment to the self-mask seed b (SHA-256), checked after reconstruction. */
export function commitSeed(seed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${PROTOCOL_LABEL}/seed-commit`).update(seed).digest());
}

const CONSISTENCY_LABEL = `${PROTOCOL_LABEL}/consistency`;

/** The bytes a client signs to confirm the survivor set (consistency check, Bonawitz et al. Fig. 4 round 3). */
export function consistencySigningBytes(round: number, sessionId: Uint8Array, survivors: readonly number[]): Uint8Array {
  // concatBytes(label, u32be(round), sessionId, u32be(n), ...survivors.map(u32be)), written into one
  // buffer: the same bytes without a 4-byte array per survivor (a cohort of 1,000 signs 1,000 ids).
  const head = concatBytes(CONSISTENCY_LABEL, u32be(round), sessionId, u32be(survivors.length));
  const out = new Uint8Array(head.length + 4 * survivors.length);
  out.set(head);
  const dv = new DataView(out.buffer);
  survivors.forEach((u, i) => {
    if (!Number.isInteger(u) || u < 0 || u >= 2 ** 32) throw new RangeError(`u32be: expected an integer 0..2^32-1, received ${u}`);
    dv.setUint32(head.length + 4 * i, u);
  });
  return out;
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * Ed25519 (RFC 8032) detached signature with a 64-byte tweetnacl secret key (seed || public
 * key). Runs in node:crypto: the same deterministic signature as `nacl.sign.detached`, about
 * 50x faster, which matters because every client verifies its neighbours' signatures twice.
 */
export function sign(message: Uint8Array, identitySecretKey: Uint8Array): Uint8Array {
  return ed25519Signer(identitySecretKey)(message);
}

/** A signing function holding the parsed identity key (parse once, sign many times). */
export function ed25519Signer(identitySecretKey: Uint8Array): (message: Uint8Array) => Uint8Array {
  if (identitySecretKey.length !== 64) throw new RangeError(`sign: identity secret key must be 64 bytes, received ${identitySecretKey.length}`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, identitySecretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  return (message) => new Uint8Array(edSign(null, message, key));
}

/**
 * The Ed25519 public key of a 32-byte seed (RFC 8032 Sec. 5.1.5), computed in node:crypto: the
 * same key as `nacl.sign.keyPair.fromSeed(seed).publicKey`, about 50x faster (a simulated
 * population of 10,000 makes 10,000 identities at start).
 */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new RangeError(`ed25519PublicKey: seed must be 32 bytes, received ${seed.length}`);
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** Ed25519 verification (false on any malformed input rather than throwing). */
export function verify(message: Uint8Array, signature: Uint8Array, identityPublicKey: Uint8Array): boolean {
  if (signature.length !== 64 || identityPublicKey.length !== 32) return false;
  try {
    return edVerify(null, message, publicKeyObject(SPKI_ED25519, identityPublicKey), signature);
  } catch {
    return false;
  }
}

const SIGMA = new Uint8Array(Buffer.from('expand 32-byte k', 'ascii'));
const hsalsa20 = (nacl as unknown as { lowlevel: { crypto_core_hsalsa20(out: Uint8Array, inp: Uint8Array, k: Uint8Array, c: Uint8Array): number } }).lowlevel
  .crypto_core_hsalsa20;

/**
 * The crypto_box shared key HSalsa20(X25519 secret), exactly nacl.box.before(theirPk, mySk),
 * from an X25519 shared secret computed in node:crypto (tweetnacl's scalar multiplication takes
 * milliseconds). It is symmetric, so a client computes it once per neighbour to seal its shares
 * and later open the neighbour's.
 */
export function boxKeyFromShared(sharedSecret: Uint8Array): Uint8Array {
  const k = new Uint8Array(32);
  hsalsa20(k, new Uint8Array(16), sharedSecret, SIGMA);
  return k;
}

/** nacl.box.before(theirPk, mySk), computed with node:crypto X25519. */
export function boxSharedKey(theirPk: Uint8Array, mySk: Uint8Array): Uint8Array {
  const s = x25519Agree(mySk, theirPk);
  const k = boxKeyFromShared(s);
  s.fill(0);
  return k;
}

/** Authenticated encryption under a box shared key (XSalsa20-Poly1305, wire-compatible with nacl.box); nonce || ciphertext. */
export function boxSeal(plain: Uint8Array, key: Uint8Array, rng: RandomBytes): Uint8Array {
  const nonce = rng(nacl.box.nonceLength);
  return concatBytes(nonce, nacl.secretbox(plain, nonce, key));
}

/** Opens a `boxSeal` output; throws SecAggError('decrypt') if it was tampered with or not for us. */
export function boxOpen(sealed: Uint8Array, key: Uint8Array): Uint8Array {
  if (sealed.length < nacl.box.nonceLength + nacl.box.overheadLength) {
    throw new SecAggError('decrypt', `ciphertext too short (${sealed.length} bytes)`);
  }
  const plain = nacl.secretbox.open(sealed.subarray(nacl.box.nonceLength), sealed.subarray(0, nacl.box.nonceLength), key);
  if (!plain) throw new SecAggError('decrypt', 'box authentication failed (tampered ciphertext or wrong keys)');
  return plain;
}

/** Byte equality in time independent of where the first difference is. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
