import type { RandomBytes } from '@fedlora/tensor';

/**
 * Exact random primitives on integers and rationals, the building blocks of the CKS 2020
 * samplers. Nothing here touches a floating-point random number: every decision is a
 * comparison between a uniform integer and an integer threshold, so the output distribution
 * is exactly the one written in the doc comment (Mironov 2012 shows why float noise leaks).
 */

/** A non-negative rational number p/q held as BigInts (q > 0). */
export interface Rational {
  num: bigint;
  den: bigint;
}

/** Denominator used to turn a float parameter into an exact rational: 2^20. */
export const RATIONAL_DENOMINATOR = 1n << 20n;

/**
 * The rational `ceil(x * 2^20) / 2^20` >= x. Rounding *up* is deliberate: a sampler run with a
 * variance slightly above the accounted one gives at least the accounted privacy.
 */
export function rationalAtLeast(x: number, what = 'value'): Rational {
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
    throw new RangeError(`${what} must be a finite number >= 0, received ${String(x)}`);
  }
  const scaled = x * Number(RATIONAL_DENOMINATOR);
  if (scaled > Number.MAX_SAFE_INTEGER) {
    // Large values: integer part is exact enough (relative error < 2^-33), round the integer up.
    return { num: BigInt(Math.ceil(x)), den: 1n };
  }
  return reduce({ num: BigInt(Math.ceil(scaled)), den: RATIONAL_DENOMINATOR });
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function reduce(r: Rational): Rational {
  const g = gcd(r.num, r.den);
  return g > 1n ? { num: r.num / g, den: r.den / g } : r;
}

/** floor(sqrt(n)) for a non-negative BigInt (Newton's method). */
export function isqrt(n: bigint): bigint {
  if (n < 0n) throw new RangeError(`isqrt needs n >= 0, received ${n}`);
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (x * x > n) x = (x + n / x) >> 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

const SAFE_LIMIT = 2n ** 48n;
const TWO48 = 2 ** 48;

/**
 * Buffered reader over a RandomBytes source with exact uniform integers. Buffering keeps the
 * per-sample cost low (the source is called once per 4 KiB) without changing the stream.
 */
export class ExactRandom {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;

  constructor(private readonly rng: RandomBytes) {
    if (typeof rng !== 'function') throw new TypeError(`rng must be a RandomBytes function, received ${typeof rng}`);
  }

  private byte(): number {
    if (this.pos >= this.buf.length) {
      this.buf = this.rng(4096);
      this.pos = 0;
    }
    return this.buf[this.pos++]!;
  }

  /** Uniform integer with 48 random bits (6 bytes). */
  bits48(): number {
    const p = this.pos;
    const b = this.buf;
    if (p + 6 <= b.length) {
      this.pos = p + 6;
      return ((((b[p]! * 256 + b[p + 1]!) * 256 + b[p + 2]!) * 256 + b[p + 3]!) * 256 + b[p + 4]!) * 256 + b[p + 5]!;
    }
    let x = 0;
    for (let i = 0; i < 6; i++) x = x * 256 + this.byte();
    return x;
  }

  private bitBuf = 0;
  private bitsLeft = 0;

  /** One fair coin (8 coins per random byte). */
  bit(): boolean {
    if (this.bitsLeft === 0) {
      this.bitBuf = this.byte();
      this.bitsLeft = 8;
    }
    this.bitsLeft--;
    return ((this.bitBuf >> this.bitsLeft) & 1) === 1;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^48, by rejection (no modulo bias). */
  below(n: number): number {
    const limit = Math.floor(TWO48 / n) * n;
    for (;;) {
      const x = this.bits48();
      if (x < limit) return x % n;
    }
  }

  /** Uniform BigInt in [0, n) for n >= 1, by rejection on the bit length of n. */
  belowBig(n: bigint): bigint {
    if (n <= SAFE_LIMIT) return BigInt(this.below(Number(n)));
    const bits = n.toString(2).length;
    const bytes = Math.ceil(bits / 8);
    const mask = (1n << BigInt(bits)) - 1n;
    for (;;) {
      let x = 0n;
      for (let i = 0; i < bytes; i++) x = (x << 8n) | BigInt(this.byte());
      x &= mask;
      if (x < n) return x;
    }
  }

  /**
   * Bernoulli(num/den) for integers with den <= 2^48, exact, by the lazy bit comparison described
   * at `bernoulli` (about 2 random bits per call).
   */
  bernoulliSmall(num: number, den: number): boolean {
    if (num <= 0) return false;
    if (num >= den) return true;
    let rem = num;
    for (;;) {
      rem *= 2;
      let p = false;
      if (rem >= den) {
        p = true;
        rem -= den;
      }
      if (this.bit() !== p) return p;
      if (rem === 0) return false;
    }
  }

  /**
   * Bernoulli(num/den), exact; num <= den. Large denominators use a lazy comparison of a uniform
   * real U = 0.u1u2... with the binary expansion of num/den, bit by bit: the first differing bit
   * decides (U < p iff at that bit u = 0 and p's bit = 1), so about 2 bits are consumed on average
   * however large den is.
   */
  bernoulli(num: bigint, den: bigint): boolean {
    if (num <= 0n) return false;
    if (num >= den) return true;
    if (den <= SAFE_LIMIT) return this.bernoulliSmall(Number(num), Number(den));
    return this.bernoulliLarge(num, den, 1, ratioEstimate(num, den));
  }

  /**
   * U < num/(den k) for 0 < num < den k and den k > 2^48, given `p`, an estimate of num/(den k)
   * with an error below 1e-12 (every caller's is below 2e-13). The first 48 bits of U are compared with p -/+ 1e-12: outside that margin the
   * answer is certain; only when U's 48-bit interval straddles it is p's expansion compared exactly
   * (BigInt). Which bits are read depends only on U and the exact p (the fast path never answers
   * for the interval that holds p), so the stream of coins is the same for any valid estimate.
   */
  private bernoulliLarge(num: bigint, den: bigint, k: number, p: number): boolean {
    const coarse = this.coarseBelow(p);
    return coarse >= 0 ? coarse === 1 : this.straddle(num, k === 1 ? den : den * BigInt(k));
  }

  /** The 48 bits of U read by the last `coarseBelow` that could not decide. */
  private straddleU = 0;

  /** 48 bits of U against p -/+ 1e-12: 1 if U < p for sure, 0 if U >= p for sure, -1 if undecided (u kept). */
  private coarseBelow(p: number): number {
    const u = this.bits48();
    if (u + 1 <= (p - 1e-12) * TWO48) return 1;
    if (u >= (p + 1e-12) * TWO48) return 0;
    this.straddleU = u;
    return -1;
  }

  /** U < num/dk exactly, given that U's first 48 bits (`straddleU`) did not decide. */
  private straddle(num: bigint, dk: bigint): boolean {
    const scaledNum = num << 48n;
    const lo = BigInt(this.straddleU) * dk;
    if (scaledNum <= lo) return false;
    if (scaledNum >= lo + dk) return true;
    // U = (u + U')/2^48 with U' uniform in [0,1): continue on U' < (num 2^48 - u dk)/dk.
    let rem = scaledNum - lo;
    for (;;) {
      rem <<= 1n;
      let bitP = false;
      if (rem >= dk) {
        bitP = true;
        rem -= dk;
      }
      if (this.bit() !== bitP) return bitP;
      if (rem === 0n) return false; // p's expansion ended: U >= p almost surely from here (U = p has probability 0)
    }
  }

  /**
   * Bernoulli(exp(-diff^2 / den)) for a safe integer `diff` and den > 2^48 (`denF` = Number(den)):
   * the same coins in the same order as `bernoulliExp(diff^2, den)`, without BigInt unless needed.
   * gamma = diff^2 / den as a double has relative error < 2^-51 (three roundings), so below 256
   * its absolute error is < 2^-43. When its fractional part is at least 1e-9 from 0 and 1,
   * floor(gamma) is therefore exact and each coin Bernoulli(frac / k) gets an estimate within
   * 1e-12 (`bernoulliLarge`'s contract); the exact remainder diff^2 mod den is formed in BigInt
   * only if a coin's 48 bits straddle its probability. Other gammas take `bernoulliExp`.
   */
  bernoulliExpOfSquare(diff: number, den: bigint, denF: number): boolean {
    const gamma = (diff * diff) / denF;
    const whole = Math.floor(gamma);
    const frac = gamma - whole; // exact: an integer <= gamma subtracted from gamma
    if (!(gamma < 256) || frac < 1e-9 || frac > 1 - 1e-9 || !(denF > TWO48)) return this.bernoulliExp(BigInt(diff) ** 2n, den);
    for (let i = whole; i > 0; i--) if (!this.bernoulliExpOfMinusOne()) return false;
    let k = 1;
    for (;;) {
      const coarse = this.coarseBelow(frac / k);
      if (coarse === 0) break;
      if (coarse < 0 && !this.straddle(BigInt(diff) ** 2n % den, den * BigInt(k))) break;
      k++;
    }
    return k % 2 === 1;
  }

  /**
   * Bernoulli(exp(-num/den)), exact: Canonne, Kamath, Steinke 2020, "The Discrete Gaussian for
   * Differential Privacy", Algorithm 1 (von Neumann's trick for gamma in [0,1]; for gamma > 1 a
   * product of floor(gamma) Bernoulli(exp(-1)) and one Bernoulli(exp(-(gamma - floor gamma)))).
   */
  bernoulliExp(num: bigint, den: bigint): boolean {
    if (num > den) {
      // floor(gamma) factors exp(-1) (one per time num > den in "while (num > den) num -= den"),
      // then exp(-rem/den) with rem in (0, den].
      let whole = num / den;
      let rem = num - whole * den;
      if (rem === 0n) {
        whole -= 1n;
        rem = den;
      }
      if (whole <= MAX_SAFE_BIG) {
        for (let i = Number(whole); i > 0; i--) if (!this.bernoulliExpOfMinusOne()) return false;
      } else {
        for (let i = whole; i > 0n; i--) if (!this.bernoulliExpOfMinusOne()) return false;
      }
      num = rem;
    }
    return this.bernoulliExpAtMostOne(num, den);
  }

  /** bernoulliExp for safe integers with den <= 2^40 (the common case), without BigInt. */
  bernoulliExpSmall(num: number, den: number): boolean {
    while (num > den) {
      if (!this.bernoulliExpOfMinusOne()) return false;
      num -= den;
    }
    let k = 1;
    for (;;) {
      const d = den * k;
      const hit = d <= TWO48 ? this.bernoulliSmall(num, d) : this.bernoulli(BigInt(num), BigInt(den) * BigInt(k));
      if (!hit) break;
      k++;
    }
    return k % 2 === 1;
  }

  /** Bernoulli(exp(-1)), CKS 2020 Algorithm 1 with gamma = 1. */
  bernoulliExpOfMinusOne(): boolean {
    let k = 1;
    while (this.bernoulliSmall(1, k)) k++;
    return k % 2 === 1;
  }

  /**
   * Bernoulli(exp(-num/den)) for 0 <= num <= den (CKS 2020 Algorithm 1): K = the first k with
   * not Bernoulli(gamma / k), accepted iff K is odd. The coins Bernoulli(num / (den k)) take the
   * float estimate of num/(den k) from two Number conversions made once (no BigInt per coin
   * unless a coin's 48 bits straddle it, see `bernoulliLarge`).
   */
  private bernoulliExpAtMostOne(num: bigint, den: bigint): boolean {
    if (num <= 0n) return true; // the first coin, Bernoulli(0), fails: K = 1
    const numF = Number(num);
    const denF = Number(den);
    let k = 1;
    for (;;) {
      let hit: boolean;
      const dk = denF * k;
      if (k === 1 && num >= den) hit = true; // num = den: Bernoulli(1)
      else if (dk <= TWO48) hit = this.bernoulliSmall(numF, dk); // den k <= 2^48: both exact safe integers
      else hit = this.bernoulliLarge(num, den, k, dk < 1e300 ? numF / dk : ratioEstimate(num, den * BigInt(k)));
      if (!hit) break;
      k++;
    }
    return k % 2 === 1;
  }
}

const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * num/den (0 < num < den) as a double within 1e-15: each Number() conversion rounds to nearest
 * (relative error <= 2^-53) and so does the division. Denominators beyond the double range are
 * first shifted so that den keeps its top 64 bits (error < 2^-50).
 */
function ratioEstimate(num: bigint, den: bigint): number {
  const d = Number(den);
  if (d < 1e300) return Number(num) / d;
  const shift = BigInt(den.toString(16).length * 4 - 64);
  return Number(num >> shift) / Number(den >> shift);
}
