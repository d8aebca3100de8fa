import { createCipheriv } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { addMask, addMasks, addMasksScalar, expandMask, PRG_BLOCK_WORDS } from './mask-prg.js';
import { simdAvailable, simdModuleBytes } from './simd-add.js';

describe('mask PRG', () => {
  const key = seededRandomBytes('prg')(32);

  it('is the AES-256-CTR keystream read as little-endian words', () => {
    const ks = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(64));
    const words = expandMask(key, 16);
    for (let i = 0; i < 16; i++) expect(words[i]).toBe(ks.readUInt32LE(4 * i));
  });

  it('seeks: a range equals the same slice of the whole mask, across block boundaries', () => {
    const whole = expandMask(key, 3 * PRG_BLOCK_WORDS + 10);
    const offset = PRG_BLOCK_WORDS - 8;
    expect(expandMask(key, PRG_BLOCK_WORDS + 20, offset)).toEqual(whole.subarray(offset, offset + PRG_BLOCK_WORDS + 20));
  });

  it('adding then subtracting the same mask restores the vector (mod 2^32)', () => {
    const v = new Uint32Array([0, 1, 0xffffffff, 123456789, 7, 8, 9]);
    const acc = v.slice();
    addMask(acc, key, 1);
    expect(acc).not.toEqual(v);
    addMask(acc, key, -1);
    expect(acc).toEqual(v);
  });

  it('looks uniform: mean of the words is near 2^31', () => {
    const w = expandMask(key, 100_000);
    let mean = 0;
    for (const x of w) mean += x / w.length;
    expect(Math.abs(mean / 2 ** 31 - 1)).toBeLessThan(0.01);
  });

  it('the SIMD path equals the scalar path (mixed signs, ragged length, offset)', () => {
    expect(simdAvailable()).toBe(true); // Node 20 ships WebAssembly SIMD
    const rng = seededRandomBytes('simd');
    const terms = [1, -1, 1, 1, -1].map((sign) => ({ key: rng(32), sign: sign as 1 | -1 }));
    const base = new Uint32Array(rng(4 * (2 * PRG_BLOCK_WORDS + 5)).slice().buffer);
    const a = base.slice();
    const b = base.slice();
    addMasks(a, terms, 8);
    addMasksScalar(b, terms, 8);
    expect(a).toEqual(b);
    expect(simdModuleBytes().length).toBeLessThan(200);
  });

  it('rejects bad keys and unaligned offsets', () => {
    expect(() => expandMask(new Uint8Array(16), 4)).toThrow(/32 bytes/);
    expect(() => expandMask(key, 4, 3)).toThrow(/multiple of 4/);
  });
});
