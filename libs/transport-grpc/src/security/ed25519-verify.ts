/**
 * Ed25519 signature verification with node:crypto (OpenSSL), for the coordinator's hot path.
 * tweetnacl's pure-JS verify costs milliseconds per signature and blocks the event loop that
 * serves every institution (#16 finding 5: 60 forged requests blocked it for about a second);
 * OpenSSL verifies in tens of microseconds. Signing stays with tweetnacl (client side, one
 * signature per request); both implement RFC 8032 (PureEd25519), so either verifies the other's
 * signatures. OpenSSL is the stricter of the two (it refuses a non-canonical S >= L, RFC 8032
 * §5.1.7 step 1), which only ever refuses more forgeries.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

/** DER prefix of a SubjectPublicKeyInfo holding a raw Ed25519 key (RFC 8410 §4: OID 1.3.101.112, then the 32-byte key). */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Enrolled keys change rarely: a small cache spares re-parsing the DER on every request. */
const KEY_CACHE_LIMIT = 4096;
const keyCache = new Map<string, KeyObject>();

/** The node:crypto public KeyObject of a raw 32-byte Ed25519 public key; throws RangeError on another length. */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) throw new RangeError(`publicKey: expected 32 bytes (Ed25519), received ${publicKey?.length}`);
  const id = Buffer.from(publicKey).toString('base64');
  let key = keyCache.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(id, key);
  }
  return key;
}

/** True when `signature` (64 bytes) is a valid Ed25519 signature of `message` under the raw 32-byte `publicKey`. Never throws. */
export function ed25519Verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  try {
    return verify(null, message, ed25519PublicKeyObject(publicKey), signature);
  } catch {
    // A key OpenSSL cannot decode is not a key anything verifies under.
    return false;
  }
}
