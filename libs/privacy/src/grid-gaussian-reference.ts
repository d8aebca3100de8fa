import type { RandomBytes } from '@fedlora/tensor';
import { ExactRandom, isqrt, rationalAtLeast, type Rational } from './exact-bits.js';
import { DEFAULT_GRID_FRACTION } from './samplers.js';

/**
 * The grid Gaussian as first written, kept as the bit-for-bit oracle of `gaussianOnGrid`: CKS 2020
 * ("The Discrete Gaussian for Differential Privacy") Algorithm 3 whose final test,
 * Bernoulli(exp(-gamma)) by Algorithm 1, forms every coin Bernoulli(gamma_frac / k) in BigInt and
 * estimates its probability through a hexadecimal string. `gaussianOnGrid` reads the same coins
 * in the same order without that work, so both return the same values from the same bytes
 * (tested); bench/privacy.ts times the two in one run. Slow: not for production use.
 */
export function gaussianOnGridReference(sigma: number, n: number, rng: RandomBytes, gridStep = sigma * DEFAULT_GRID_FRACTION): Float64Array {
  const ratio = sigma / gridStep;
  const s2 = rationalAtLeast(ratio * ratio, '(sigma/gridStep)^2');
  const t = isqrt(s2.num / s2.den) + 1n;
  if (t >= 2n ** 40n) throw new RangeError(`gaussianOnGridReference covers grids with sigma/gridStep < 2^40, received ${ratio}`);
  const r = new ExactRandom(rng);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = drawSmallT(s2, Number(t), r) * gridStep;
  return out;
}

function drawSmallT(sigma2: Rational, t: number, r: ExactRandom): number {
  const { num: a, den: b } = sigma2;
  const tb = BigInt(t);
  const den = 2n * a * b * tb * tb;
  for (;;) {
    const u = r.below(t);
    if (!r.bernoulliExpSmall(u, t)) continue;
    let v = 0;
    while (r.bernoulliExpOfMinusOne()) v++;
    const x = u + t * v;
    const negative = r.bit();
    if (negative && x === 0) continue;
    const diff = BigInt(x) * tb * b - a;
    if (bernoulliExp(r, diff * diff, den)) return negative ? -x : x;
  }
}

function bernoulliExp(r: ExactRandom, num: bigint, den: bigint): boolean {
  while (num > den) {
    if (!bernoulliExpAtMostOne(r, 1n, 1n)) return false;
    num -= den;
  }
  return bernoulliExpAtMostOne(r, num, den);
}

function bernoulliExpAtMostOne(r: ExactRandom, num: bigint, den: bigint): boolean {
  let k = 1n;
  while (bernoulli(r, num, den * k)) k += 1n;
  return k % 2n === 1n;
}

const TWO48 = 2 ** 48;

function bernoulli(r: ExactRandom, num: bigint, den: bigint): boolean {
  if (num <= 0n) return false;
  if (num >= den) return true;
  if (den <= 2n ** 48n) return r.bernoulliSmall(Number(num), Number(den));
  const shift = BigInt(Math.max(0, den.toString(16).length * 4 - 64));
  const p = Number(num >> shift) / Number(den >> shift);
  const u = r.bits48();
  if (u + 1 <= (p - 1e-12) * TWO48) return true;
  if (u >= (p + 1e-12) * TWO48) return false;
  const scaledNum = num << 48n;
  const lo = BigInt(u) * den;
  if (scaledNum <= lo) return false;
  if (scaledNum >= lo + den) return true;
  let rem = scaledNum - lo;
  for (;;) {
    rem <<= 1n;
    let bit = false;
    if (rem >= den) {
      bit = true;
      rem -= den;
    }
    if (r.bit() !== bit) return bit;
    if (rem === 0n) return false;
  }
}
