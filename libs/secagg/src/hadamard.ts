import { seededRandomBytes } from '@fedlora/tensor';

/**
 * Randomized Hadamard rotation x -> H D x / sqrt(D) (Ailon & Chazelle 2006; used for distributed
 * DP by Kairouz et al. 2021, "The Distributed Discrete Gaussian Mechanism", Sec. 4.1): D is a
 * diagonal of random signs from a public per-round seed, H the Walsh-Hadamard matrix of the
 * padded power-of-two size. The rotation is orthonormal, so it keeps the L2 norm (and the clip)
 * while spreading a spiky update over all coordinates: each coordinate becomes sub-Gaussian with
 * parameter ||x|| / sqrt(D), which is what makes a fixed bit width safe against overflow.
 */

/** Smallest power of two >= d (at least 1). */
export function paddedDimension(d: number): number {
  if (!Number.isInteger(d) || d < 1) throw new RangeError(`paddedDimension: d must be a positive integer, received ${d}`);
  let p = 1;
  while (p < d) p *= 2;
  return p;
}

/** In-place fast Walsh-Hadamard transform, orthonormal (scaled by 1/sqrt(length)); self-inverse. */
export function fwht(x: Float64Array): void {
  const n = x.length;
  if (n === 0 || (n & (n - 1)) !== 0) throw new RangeError(`fwht: length must be a power of two, received ${n}`);
  for (let h = 1; h < n; h *= 2) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let j = i; j < i + h; j++) {
        const a = x[j]!;
        const b = x[j + h]!;
        x[j] = a + b;
        x[j + h] = a - b;
      }
    }
  }
  const s = 1 / Math.sqrt(n);
  for (let i = 0; i < n; i++) x[i]! *= s;
}

/** The +-1 diagonal for `length` coordinates derived from a 32-byte public seed. */
export function rotationSigns(seed: Uint8Array, length: number): Int8Array {
  if (seed.length !== 32) throw new RangeError(`rotationSigns: seed must be 32 bytes, received ${seed.length}`);
  const bits = seededRandomBytes(`secagg-rotation:${Buffer.from(seed).toString('hex')}`)(Math.ceil(length / 8));
  const out = new Int8Array(length);
  for (let i = 0; i < length; i++) out[i] = (bits[i >> 3]! >> (i & 7)) & 1 ? -1 : 1;
  return out;
}

/** Rotates `x` (length d) into a new padded vector of length paddedDimension(d): H D [x; 0] / sqrt(D). */
export function rotate(x: ArrayLike<number>, seed: Uint8Array): Float64Array {
  const out = new Float64Array(paddedDimension(x.length));
  const signs = rotationSigns(seed, out.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * signs[i]!;
  fwht(out);
  return out;
}

/** Inverse of `rotate`: D H y / sqrt(D), truncated to the first `d` coordinates (y is consumed). */
export function unrotate(y: Float64Array, seed: Uint8Array, d: number): Float64Array {
  if (d > y.length) throw new RangeError(`unrotate: d=${d} exceeds the rotated length ${y.length}`);
  fwht(y);
  const signs = rotationSigns(seed, y.length);
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) out[i] = y[i]! * signs[i]!;
  return out;
}
