import { createCipheriv } from 'node:crypto';
import { endianness } from 'node:os';
import { SIMD_BLOCK_BYTES, SIMD_SEGMENT_BYTES, simdKernel, type SimdKernel } from './simd-add.js';

/**
 * Mask expansion: a 32-byte key becomes a vector in Z_(2^32)^d through the AES-256-CTR keystream
 * (NIST SP 800-38A), read as little-endian 32-bit words. Unlike Flower's SecAgg+ (numpy's
 * generator seeded with 32 bits), the key has 256 bits and the generator is a PRF, so masks
 * are computationally indistinguishable from uniform. CTR mode seeks: word w lives in block
 * floor(w / 4), so a range of a mask is computed without the words before it, which lets the
 * server and clients work chunk by chunk.
 *
 * Arithmetic: Uint32Array stores wrap modulo 2^32 (ToUint32), so `acc[i] += ks[i]` and
 * `acc[i] -= ks[i]` are exact modular addition and subtraction. Vectors in Z_(2^b), b < 32,
 * use the same words: 2^b divides 2^32, so reducing the final sum modulo 2^b is consistent.
 */

/** Words expanded per cipher call: 64 KiB stays in L2 cache while it is added. */
export const PRG_BLOCK_WORDS = 16_384;

const ZEROS = Buffer.alloc(PRG_BLOCK_WORDS * 4);

if (endianness() !== 'LE') {
  // Masks must be bit-identical on every party; the Uint32Array view below assumes little-endian.
  throw new Error('@fedlora/secagg mask-prg: big-endian hosts are not supported');
}

function counterIv(offsetWords: number): Buffer {
  const iv = Buffer.alloc(16);
  const block = offsetWords / 4;
  iv.writeUInt32BE(Math.floor(block / 2 ** 32), 8);
  iv.writeUInt32BE(block >>> 0, 12);
  return iv;
}

function checkArgs(fn: string, key: Uint8Array, offsetWords: number): void {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new RangeError(`${fn}: key must be 32 bytes, received ${key?.length}`);
  if (!Number.isInteger(offsetWords) || offsetWords < 0 || offsetWords % 4 !== 0) {
    throw new RangeError(`${fn}: offsetWords must be a non-negative multiple of 4, received ${offsetWords}`);
  }
}

function asWords(buf: Buffer, words: number): Int32Array {
  if (buf.byteOffset % 4 === 0) return new Int32Array(buf.buffer, buf.byteOffset, words);
  return new Int32Array(new Uint8Array(buf).buffer, 0, words);
}

/** One mask to add (sign 1) or subtract (sign -1). */
export type MaskTerm = { key: Uint8Array; sign: 1 | -1 };

/**
 * acc[i] += sign * PRG(key)[offsetWords + i] (mod 2^32) for every i: adds (sign = 1) or
 * subtracts (sign = -1) the mask words covering [offsetWords, offsetWords + acc.length).
 */
export function addMask(acc: Uint32Array, key: Uint8Array, sign: 1 | -1, offsetWords = 0): void {
  addMasks(acc, [{ key, sign }], offsetWords);
}

/**
 * acc += sum over terms of sign * PRG(key) on [offsetWords, offsetWords + acc.length).
 * The inner loop works on Int32Array views with `| 0`, which V8 keeps in 32-bit integer
 * registers (two's complement addition is addition mod 2^32), about 2x faster than the same
 * loop on Uint32 values, which V8 widens to doubles.
 */
export function addMasks(acc: Uint32Array, terms: readonly MaskTerm[], offsetWords = 0): void {
  if (!(acc instanceof Uint32Array)) throw new TypeError(`addMasks: acc must be a Uint32Array, received ${typeof acc}`);
  for (const t of terms) {
    checkArgs('addMasks', t.key, offsetWords);
    if (t.sign !== 1 && t.sign !== -1) throw new RangeError(`addMasks: sign must be 1 or -1, received ${t.sign}`);
  }
  const simd = simdKernel();
  if (simd) addMasksSimd(simd, acc, terms, offsetWords);
  else addMasksScalar(acc, terms, offsetWords);
}

/** The portable path (no WebAssembly SIMD): the same result, about twice the cost. */
export function addMasksScalar(acc: Uint32Array, terms: readonly MaskTerm[], offsetWords = 0): void {
  const a = new Int32Array(acc.buffer, acc.byteOffset, acc.length);
  for (const t of terms) {
    const cipher = createCipheriv('aes-256-ctr', t.key, counterIv(offsetWords));
    for (let start = 0; start < a.length; start += PRG_BLOCK_WORDS) {
      const n = Math.min(PRG_BLOCK_WORDS, a.length - start);
      const ks = asWords(cipher.update(ZEROS.subarray(0, n * 4)), n);
      if (t.sign === 1) for (let i = 0; i < n; i++) a[start + i] = (a[start + i]! + ks[i]!) | 0;
      else for (let i = 0; i < n; i++) a[start + i] = (a[start + i]! - ks[i]!) | 0;
    }
  }
}

/**
 * The SIMD path: segment by segment (1 MiB of the accumulator in WebAssembly memory), and within
 * a segment term by term, so each AES context streams 16 blocks in a row: copy the keystream
 * block in, add or subtract four lanes at a time. The accumulator is copied in and out once per
 * segment; the keystream copy is the only per-mask overhead left over the raw cipher.
 */
function addMasksSimd(simd: SimdKernel, acc: Uint32Array, terms: readonly MaskTerm[], offsetWords: number): void {
  const mem = simd.bytes;
  const accBytes = new Uint8Array(acc.buffer, acc.byteOffset, acc.length * 4);
  const segWords = SIMD_SEGMENT_BYTES / 4;
  for (let seg = 0; seg < acc.length; seg += segWords) {
    const segBytes = Math.min(segWords, acc.length - seg) * 4;
    mem.set(accBytes.subarray(seg * 4, seg * 4 + segBytes), SIMD_BLOCK_BYTES);
    for (const t of terms) {
      const cipher = createCipheriv('aes-256-ctr', t.key, counterIv(offsetWords + seg));
      for (let o = 0; o < segBytes; o += SIMD_BLOCK_BYTES) {
        const nb = Math.min(SIMD_BLOCK_BYTES, segBytes - o);
        mem.set(cipher.update(ZEROS.subarray(0, nb)), 0);
        const padded = Math.ceil(nb / 16) * 16;
        if (t.sign === 1) simd.add(SIMD_BLOCK_BYTES + o, padded);
        else simd.sub(SIMD_BLOCK_BYTES + o, padded);
      }
    }
    accBytes.set(mem.subarray(SIMD_BLOCK_BYTES, SIMD_BLOCK_BYTES + segBytes), seg * 4);
  }
}

/** The mask words PRG(key)[offsetWords .. offsetWords + words) as a new vector. */
export function expandMask(key: Uint8Array, words: number, offsetWords = 0): Uint32Array {
  const out = new Uint32Array(words);
  addMask(out, key, 1, offsetWords);
  return out;
}

/**
 * The physical limit the benchmarks compare against: produce `bytes` of AES-256-CTR keystream
 * with the same block size and nothing else. Returns a checksum so the work cannot be elided.
 */
export function rawKeystream(key: Uint8Array, bytes: number): number {
  checkArgs('rawKeystream', key, 0);
  const cipher = createCipheriv('aes-256-ctr', key, counterIv(0));
  let check = 0;
  for (let done = 0; done < bytes; done += ZEROS.length) {
    const ks = cipher.update(ZEROS.subarray(0, Math.min(ZEROS.length, bytes - done)));
    check ^= ks[0]!;
  }
  return check;
}
