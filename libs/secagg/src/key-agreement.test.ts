import { createHash } from 'node:crypto';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { generateIdentity } from './client.js';
import { SecAggError } from './errors.js';
import {
  boxOpen,
  boxSeal,
  boxSharedKey,
  computeSessionId,
  consistencySigningBytes,
  ed25519PublicKey,
  generateX25519,
  hkdf,
  sign,
  verify,
  x25519Agree,
} from './key-agreement.js';

describe('key agreement', () => {
  it('agrees on the same secret from both sides, equal to nacl.scalarMult', () => {
    const rng = seededRandomBytes('ka');
    const a = generateX25519(rng);
    const b = generateX25519(rng);
    const ab = x25519Agree(a.secretKey, b.publicKey);
    expect(x25519Agree(b.secretKey, a.publicKey)).toEqual(ab);
    expect(ab).toEqual(nacl.scalarMult(a.secretKey, b.publicKey));
  });

  it('matches the RFC 7748 Sec. 6.1 test vector', () => {
    const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
    const aliceSk = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPk = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(Buffer.from(x25519Agree(aliceSk, bobPk)).toString('hex')).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('rejects a low-order public key', () => {
    const rng = seededRandomBytes('ka-low');
    const a = generateX25519(rng);
    const e = (() => {
      try {
        x25519Agree(a.secretKey, new Uint8Array(32));
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(SecAggError);
    expect((e as SecAggError).check).toBe('key');
  });

  it('derives different keys for different labels and salts (RFC 5869 vector A.1)', () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = new Uint8Array(Buffer.from('000102030405060708090a0b0c', 'hex'));
    const info = new Uint8Array(Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex'));
    expect(Buffer.from(hkdf(ikm, salt, info, 42)).toString('hex')).toBe(
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
    expect(hkdf(ikm, salt, 'a')).not.toEqual(hkdf(ikm, salt, 'b'));
  });

  it('binds the session id to the round and every key', () => {
    const rng = seededRandomBytes('session');
    const keys = [0, 1, 2].map((clientId) => ({ clientId, cPk: rng(32), sPk: rng(32), bCommit: rng(32) }));
    const s = computeSessionId(7, keys);
    // SHA-256 over the label, round, config digest and each (id, cPk, sPk, bCommit) by ascending id, ids as u32 big-endian.
    const h = createHash('sha256').update('fedlora-secagg-v1/session').update(Buffer.from([0, 0, 0, 7])).update(new Uint8Array(32));
    for (const k of [...keys].sort((x, y) => x.clientId - y.clientId)) h.update(Buffer.from([0, 0, 0, k.clientId])).update(k.cPk).update(k.sPk).update(k.bCommit);
    expect(Buffer.from(s)).toEqual(h.digest());
    expect(computeSessionId(7, [...keys].reverse())).toEqual(s);
    expect(computeSessionId(8, keys)).not.toEqual(s);
    const tampered = keys.map((k) => ({ ...k }));
    tampered[1] = { ...tampered[1]!, sPk: rng(32) };
    expect(computeSessionId(7, tampered)).not.toEqual(s);
  });

  it('signs and verifies, and refuses a wrong key or message', () => {
    const id = nacl.sign.keyPair.fromSeed(seededRandomBytes('id')(32));
    const other = nacl.sign.keyPair.fromSeed(seededRandomBytes('other')(32));
    const msg = new Uint8Array([1, 2, 3]);
    const sig = sign(msg, id.secretKey);
    expect(verify(msg, sig, id.publicKey)).toBe(true);
    expect(verify(msg, sig, other.publicKey)).toBe(false);
    expect(verify(new Uint8Array([1, 2, 4]), sig, id.publicKey)).toBe(false);
    expect(verify(msg, sig.subarray(1), id.publicKey)).toBe(false);
    expect(sig).toEqual(nacl.sign.detached(msg, id.secretKey)); // identical to tweetnacl's deterministic signature
  });

  it('box round-trips and rejects a tampered ciphertext', () => {
    const rng = seededRandomBytes('box');
    const a = generateX25519(rng);
    const b = generateX25519(rng);
    const sealed = boxSeal(new Uint8Array([9, 8, 7]), boxSharedKey(b.publicKey, a.secretKey), rng);
    expect(boxSharedKey(a.publicKey, b.secretKey)).toEqual(nacl.box.before(a.publicKey, b.secretKey));
    expect(boxOpen(sealed, boxSharedKey(a.publicKey, b.secretKey))).toEqual(new Uint8Array([9, 8, 7]));
    const theirs = nacl.box.open(sealed.subarray(24), sealed.subarray(0, 24), a.publicKey, b.secretKey);
    expect(theirs).toEqual(new Uint8Array([9, 8, 7])); // wire-compatible with nacl.box
    expect(a.publicKey).toEqual(nacl.box.keyPair.fromSecretKey(a.secretKey).publicKey);
    sealed[sealed.length - 1]! ^= 1;
    expect(() => boxOpen(sealed, boxSharedKey(a.publicKey, b.secretKey))).toThrow(/decrypt check failed/);
  });

  it('signs the survivor set as label, round, session, count and ids, big-endian', () => {
    const session = new Uint8Array(32).fill(7);
    const expected = Buffer.concat([
      Buffer.from('fedlora-secagg-v1/consistency', 'utf8'),
      Buffer.from([0, 0, 1, 2]), // round 258
      session,
      Buffer.from([0, 0, 0, 3]), // three survivors
      Buffer.from([0, 0, 0, 1, 0, 0, 1, 0, 0x7f, 0xff, 0xff, 0xff]), // 1, 256, 2^31 - 1
    ]);
    expect(Buffer.from(consistencySigningBytes(258, session, [1, 256, 2 ** 31 - 1]))).toEqual(expected);
    expect(() => consistencySigningBytes(1, session, [1, -2])).toThrow(RangeError);
    expect(() => consistencySigningBytes(1, session, [1.5])).toThrow(RangeError);
  });

  it('derives the Ed25519 public key of a seed exactly as tweetnacl does (RFC 8032 Sec. 7.1 test 1)', () => {
    const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    expect(Buffer.from(ed25519PublicKey(seed)).toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    const rng = seededRandomBytes('ed25519');
    for (let i = 0; i < 5; i++) {
      const s = rng(32);
      expect(ed25519PublicKey(s)).toEqual(nacl.sign.keyPair.fromSeed(s).publicKey);
    }
    expect(() => ed25519PublicKey(new Uint8Array(31))).toThrow(RangeError);
    const id = generateIdentity(seededRandomBytes('identity'));
    const ref = nacl.sign.keyPair.fromSeed(seededRandomBytes('identity')(32));
    expect(id.publicKey).toEqual(ref.publicKey);
    expect(id.secretKey).toEqual(ref.secretKey);
  });
});
