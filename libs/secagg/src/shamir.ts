import type { RandomBytes } from '@fedlora/tensor';

/**
 * t-of-n Shamir secret sharing (Shamir 1979, "How to share a secret") over the prime field
 * GF(p), p = 2^521 - 1 (a Mersenne prime), with BigInt.
 *
 * Why a prime field and not byte-wise GF(2^8): GF(2^8) allows at most 255 share holders, and
 * full SecAgg (k = n - 1) must support cohorts of hundreds; the 521-bit field holds any 64-byte
 * secret in one field element, so a 32-byte X25519 key or mask seed is one polynomial, and the
 * cost (t multiplications per share, O(t^2) per reconstruction) is negligible next to mask
 * expansion for the neighbourhood sizes SecAgg+ uses.
 */

/** The field modulus 2^521 - 1. */
export const SHAMIR_PRIME = (1n << 521n) - 1n;
/** Bytes of one serialized field element (521 bits). */
export const SHAMIR_ELEMENT_BYTES = 66;
/** Largest secret, in bytes, that fits in one field element. */
export const SHAMIR_MAX_SECRET_BYTES = 64;

/** One share: the polynomial evaluated at x (x >= 1). */
export type ShamirShare = { x: number; y: Uint8Array };

const P = SHAMIR_PRIME;

function mod(a: bigint): bigint {
  const r = a % P;
  return r < 0n ? r + P : r;
}

/** x mod (2^521 - 1) for 0 <= x < 2^1042 by folding (2^521 = 1 mod p): shifts and adds, no division. */
function reduce(x: bigint): bigint {
  x = (x & P) + (x >> 521n);
  x = (x & P) + (x >> 521n);
  return x >= P ? x - P : x;
}

/** Big-endian bytes -> BigInt. */
export function bytesToBigInt(bytes: Uint8Array): bigint {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt(`0x${hex}`);
}

/** BigInt -> big-endian bytes of fixed `length` (RangeError if it does not fit). */
export function bigIntToBytes(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new RangeError(`bigIntToBytes: value must be >= 0, received a negative number`);
  const hex = value.toString(16);
  if (hex.length > length * 2) throw new RangeError(`bigIntToBytes: value needs ${Math.ceil(hex.length / 2)} bytes, length is ${length}`);
  const padded = hex.padStart(length * 2, '0');
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(padded.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Uniform field element by rejection sampling on 521-bit strings (rejects with prob. 2^-521). */
function randomElement(rng: RandomBytes): bigint {
  for (;;) {
    const b = rng(SHAMIR_ELEMENT_BYTES);
    b[0]! &= 0x01; // keep 521 bits
    const v = bytesToBigInt(b);
    b.fill(0);
    if (v < P) return v;
  }
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = reduce(result * b);
    b = reduce(b * b);
    e >>= 1n;
  }
  return result;
}

/** Multiplicative inverse by Fermat's little theorem (p is prime). */
function modInverse(a: bigint): bigint {
  if (mod(a) === 0n) throw new RangeError('modInverse: zero has no inverse');
  return modPow(a, P - 2n);
}

/**
 * Splits `secret` (<= 64 bytes) into shares at the given x-coordinates (distinct integers
 * 1..2^32-1) so that any `threshold` of them reconstruct it and fewer reveal nothing
 * (the polynomial's other t-1 coefficients are uniform).
 */
export function shamirSplit(secret: Uint8Array, threshold: number, xs: readonly number[], rng: RandomBytes): ShamirShare[] {
  if (!(secret instanceof Uint8Array)) throw new TypeError(`shamirSplit: secret must be a Uint8Array, received ${typeof secret}`);
  if (secret.length > SHAMIR_MAX_SECRET_BYTES) throw new RangeError(`shamirSplit: secret must be <= ${SHAMIR_MAX_SECRET_BYTES} bytes, received ${secret.length}`);
  if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`shamirSplit: threshold must be an integer >= 1, received ${threshold}`);
  if (xs.length < threshold) throw new RangeError(`shamirSplit: need at least threshold=${threshold} share holders, received ${xs.length}`);
  assertDistinctXs(xs, 'shamirSplit');
  const coeffs: bigint[] = [bytesToBigInt(secret)];
  for (let i = 1; i < threshold; i++) coeffs.push(randomElement(rng));
  const shares = xs.map((x) => {
    const bx = BigInt(x);
    let acc = 0n;
    for (let i = coeffs.length - 1; i >= 0; i--) acc = reduce(acc * bx + coeffs[i]!); // Horner
    return { x, y: bigIntToBytes(acc, SHAMIR_ELEMENT_BYTES) };
  });
  coeffs.fill(0n);
  return shares;
}

/**
 * Lagrange interpolation at 0 from exactly the given shares (callers pass >= threshold of them;
 * with fewer, the result is a uniformly random-looking value, not the secret). Returns
 * `secretLength` bytes; RangeError if the interpolated value does not fit (a sign of too few
 * or corrupted shares).
 */
export function shamirCombine(shares: readonly ShamirShare[], secretLength: number): Uint8Array {
  return shamirCombineMany([shares], secretLength)[0]!;
}

/**
 * Reconstructs many secrets at once. Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i);
 * every denominator of every secret is inverted with a single exponentiation (Montgomery's
 * batch-inversion trick), so the server's unmasking of n clients costs one modPow plus O(n t^2)
 * multiplications instead of n t modPows.
 */
export function shamirCombineMany(sets: ReadonlyArray<readonly ShamirShare[]>, secretLength: number): Uint8Array[] {
  if (!Number.isInteger(secretLength) || secretLength < 1 || secretLength > SHAMIR_MAX_SECRET_BYTES) {
    throw new RangeError(`shamirCombine: secretLength must be 1..${SHAMIR_MAX_SECRET_BYTES}, received ${secretLength}`);
  }
  const nums: bigint[] = [];
  const dens: bigint[] = [];
  for (const shares of sets) {
    if (shares.length === 0) throw new RangeError('shamirCombine: need at least one share, received 0');
    assertDistinctXs(shares.map((s) => s.x), 'shamirCombine');
    const xs = shares.map((s) => BigInt(s.x));
    for (let i = 0; i < xs.length; i++) {
      let num = 1n;
      let den = 1n;
      for (let j = 0; j < xs.length; j++) {
        if (j === i) continue;
        num = reduce(num * xs[j]!);
        den = reduce(den * mod(xs[j]! - xs[i]!));
      }
      nums.push(num);
      dens.push(den);
    }
  }
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const d of dens) {
    prefix.push(acc);
    acc = reduce(acc * d);
  }
  let inv = modInverse(acc);
  const invDens = new Array<bigint>(dens.length);
  for (let i = dens.length - 1; i >= 0; i--) {
    invDens[i] = reduce(inv * prefix[i]!);
    inv = reduce(inv * dens[i]!);
  }
  let k = 0;
  return sets.map((shares) => {
    let secret = 0n;
    for (const sh of shares) {
      const yi = bytesToBigInt(sh.y);
      if (yi >= P) throw new RangeError(`shamirCombine: share y-value at x=${sh.x} is not a field element`);
      secret = reduce(secret + reduce(yi * reduce(nums[k]! * invDens[k]!)));
      k++;
    }
    return bigIntToBytes(secret, secretLength);
  });
}

/** Inverses of many nonzero field elements with one exponentiation (Montgomery's trick). */
function batchInverse(values: readonly bigint[]): bigint[] {
  const prefix: bigint[] = [];
  let acc = 1n;
  for (const v of values) {
    prefix.push(acc);
    acc = reduce(acc * v);
  }
  let inv = modInverse(acc);
  const out = new Array<bigint>(values.length);
  for (let i = values.length - 1; i >= 0; i--) {
    out[i] = reduce(inv * prefix[i]!);
    inv = reduce(inv * values[i]!);
  }
  return out;
}

/**
 * For each job, whether each of `others` lies on the polynomial through `basis` (exactly the
 * threshold's number of shares, all x distinct). Lagrange interpolation in barycentric form
 * (Berrut and Trefethen 2004, eq. 3.3): P(x) = L(x) sum_i w_i y_i / (x - x_i), with
 * L(x) = prod_j (x - x_j) and w_i = 1 / prod_{j != i} (x_i - x_j); all inverses of all jobs come
 * from one batch inversion, so a check costs O(t) multiplications instead of a new O(t^2)
 * interpolation. A share that is not a field element is off the polynomial.
 */
export function sharesOnPolynomial(jobs: ReadonlyArray<{ basis: readonly ShamirShare[]; others: readonly ShamirShare[] }>): boolean[][] {
  const small = (d: bigint) => (d < 0n ? d + P : d); // |x_a - x_b| < 2^32: no division needed
  const toInvert: bigint[] = [];
  const ls: bigint[] = [];
  for (const { basis, others } of jobs) {
    assertDistinctXs([...basis, ...others].map((s) => s.x), 'sharesOnPolynomial');
    const xs = basis.map((s) => BigInt(s.x));
    for (let i = 0; i < xs.length; i++) {
      let d = 1n;
      for (let j = 0; j < xs.length; j++) if (j !== i) d = reduce(d * small(xs[i]! - xs[j]!));
      toInvert.push(d);
    }
    for (const c of others) {
      const cx = BigInt(c.x);
      let l = 1n;
      for (const x of xs) {
        const d = small(cx - x);
        toInvert.push(d);
        l = reduce(l * d);
      }
      ls.push(l);
    }
  }
  const inv = toInvert.length > 0 ? batchInverse(toInvert) : [];
  let k = 0;
  let o = 0;
  return jobs.map(({ basis, others }) => {
    const ys = basis.map((s) => bytesToBigInt(s.y));
    const basisOk = ys.every((y) => y < P);
    const wy = ys.map((y) => reduce(inv[k++]! * (y < P ? y : 0n)));
    return others.map((c) => {
      let sum = 0n;
      for (let i = 0; i < wy.length; i++) sum += reduce(wy[i]! * inv[k++]!);
      const yc = bytesToBigInt(c.y);
      return basisOk && yc < P && reduce(ls[o++]! * mod(sum)) === yc;
    });
  });
}

function assertDistinctXs(xs: readonly number[], fn: string): void {
  const seen = new Set<number>();
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x >= 2 ** 32) throw new RangeError(`${fn}: x-coordinates must be integers 1..2^32-1, received ${x}`);
    if (seen.has(x)) throw new RangeError(`${fn}: x-coordinates must be distinct, ${x} repeats`);
    seen.add(x);
  }
}
