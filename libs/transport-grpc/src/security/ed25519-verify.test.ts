import { seededRandomBytes } from '@fedlora/tensor';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { ed25519PublicKeyObject, ed25519Verify } from './ed25519-verify.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

// RFC 8032 §7.1, TEST 1-3 (secret seed, public key, message, signature).
const RFC8032 = [
  {
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

describe('ed25519Verify (node:crypto)', () => {
  it('accepts the RFC 8032 §7.1 test vectors, which tweetnacl signs identically', () => {
    for (const v of RFC8032) {
      const kp = nacl.sign.keyPair.fromSeed(hex(v.seed));
      expect(Buffer.from(kp.publicKey).toString('hex')).toBe(v.publicKey);
      expect(Buffer.from(nacl.sign.detached(hex(v.message), kp.secretKey)).toString('hex')).toBe(v.signature);
      expect(ed25519Verify(hex(v.message), hex(v.signature), hex(v.publicKey))).toBe(true);
    }
  });

  it('agrees with tweetnacl on valid and tampered signatures', () => {
    const rng = seededRandomBytes('ed25519-verify');
    for (let i = 0; i < 20; i++) {
      const kp = nacl.sign.keyPair.fromSeed(rng(32));
      const msg = rng(1 + i * 7);
      const sig = nacl.sign.detached(msg, kp.secretKey);
      expect(ed25519Verify(msg, sig, kp.publicKey)).toBe(true);
      const flipped = sig.slice();
      flipped[i % 64]! ^= 1 << (i % 8);
      expect(ed25519Verify(msg, flipped, kp.publicKey)).toBe(nacl.sign.detached.verify(msg, flipped, kp.publicKey));
      expect(ed25519Verify(msg, flipped, kp.publicKey)).toBe(false);
      const other = msg.slice();
      other[0]! ^= 0x80;
      expect(ed25519Verify(other, sig, kp.publicKey)).toBe(false);
    }
  });

  it('refuses a non-canonical S (S + L), which tweetnacl accepts: only stricter, never looser', () => {
    const v = RFC8032[0]!;
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian; S' = S + L encodes the same scalar.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const sig = hex(v.signature);
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    let s2 = s + L;
    for (let i = 32; i < 64; i++) {
      sig[i] = Number(s2 & 0xffn);
      s2 >>= 8n;
    }
    expect(nacl.sign.detached.verify(hex(v.message), sig, hex(v.publicKey))).toBe(true);
    expect(ed25519Verify(hex(v.message), sig, hex(v.publicKey))).toBe(false);
  });

  it('answers false (never throws) for wrong lengths and keys OpenSSL cannot use', () => {
    const v = RFC8032[1]!;
    expect(ed25519Verify(hex(v.message), hex(v.signature).subarray(0, 63), hex(v.publicKey))).toBe(false);
    expect(ed25519Verify(hex(v.message), hex(v.signature), hex(v.publicKey).subarray(0, 31))).toBe(false);
    expect(ed25519Verify(hex(v.message), hex(v.signature), new Uint8Array(32).fill(0xff))).toBe(false);
    expect(() => ed25519PublicKeyObject(new Uint8Array(31))).toThrow(/expected 32 bytes/);
  });
});
