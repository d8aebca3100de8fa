import type { ExactRandom, Rational } from './exact-bits.js';

/**
 * Exact Poisson(mu) for large rational mu = a/b in O(sqrt(mu)) uniform integers per draw,
 * using only integer comparisons.
 *
 * Rejection from a two-sided geometric proposal centred at the mode m = floor(mu) with rational
 * ratio rho = (t-1)/t, t = ceil(sqrt(mu)) (q(k) proportional to rho^|k-m|, magnitude and sign drawn
 * as in CKS 2020 Algorithm 2, rejecting the duplicate 0 of the negative side). The pmf
 * ratio to the mode is a product of rational factors:
 *   right, k = m + x:  p(k)/p(m) = prod_{n=1..x} mu/(m+n),
 *   left,  k = m - x:  p(k)/p(m) = prod_{n=1..x} (m-n+1)/mu,
 * so the acceptance ratio G(x)/M, with G(x) = prod_{n<=x} g_n, g_n = (pmf factor)/rho, and M the
 * largest G over both sides, is rational. The g_n decrease in n (the Poisson law is log-concave),
 * so G rises to its peak G(j) (j = number of g_n >= 1) and then falls; hence
 *   G(x)/M = (G(j)/M) * prod_{n=j+1..x} g_n            (x >= j, every factor <= 1)
 *   G(x)/M = (G(j)/M) * prod_{n=x+1..j} 1/g_n          (x <  j, every factor <= 1)
 * and acceptance is an AND of exact Bernoulli coins that stops at the first failure.
 */
export class LargePoissonSampler {
  private readonly a: bigint;
  private readonly b: bigint;
  private readonly m: number;
  private readonly t: number;
  private readonly aN: number;
  private readonly bN: number;
  private readonly side: Array<{ peak: number; scale: Rational }>;
  private readonly blockNum: bigint;
  private readonly blockDen: bigint;

  constructor(rate: Rational) {
    this.a = rate.num;
    this.b = rate.den;
    this.aN = Number(rate.num);
    this.bN = Number(rate.den);
    this.m = Number(rate.num / rate.den);
    if (this.m < 1) throw new RangeError(`LargePoissonSampler needs mu >= 1, received ${this.aN / this.bN}`);
    this.t = Math.max(2, Math.ceil(Math.sqrt(this.aN / this.bN)));
    this.blockNum = BigInt(this.t - 1) ** BigInt(this.t);
    this.blockDen = BigInt(this.t) ** BigInt(this.t);
    const peaks = [0, 1].map((s) => this.peak(s === 0));
    const gs = peaks.map((p) => p.g);
    // M = max(G_right(j), G_left(j)); each side's scale is G_side(j) / M.
    const rightBigger = gs[0]!.num * gs[1]!.den >= gs[1]!.num * gs[0]!.den;
    const M = rightBigger ? gs[0]! : gs[1]!;
    this.side = peaks.map((p) => ({ peak: p.j, scale: { num: p.g.num * M.den, den: p.g.den * M.num } }));
  }

  /** The n-th factor g_n (n >= 1) of one side as a BigInt rational. */
  private factor(right: boolean, n: number): Rational {
    const t = BigInt(this.t);
    if (right) return { num: this.a * t, den: this.b * BigInt(this.m + n) * (t - 1n) };
    return { num: this.b * BigInt(Math.max(0, this.m - n + 1)) * t, den: this.a * (t - 1n) };
  }

  private peak(right: boolean): { j: number; g: Rational } {
    let num = 1n;
    let den = 1n;
    let j = 0;
    for (;;) {
      const f = this.factor(right, j + 1);
      if (f.num < f.den) break;
      num *= f.num;
      den *= f.den;
      j++;
    }
    return { j, g: { num, den } };
  }

  /** Bernoulli(g_n) (inverse: Bernoulli(1/g_n)), with a fast path in safe integers. */
  private coin(r: ExactRandom, right: boolean, n: number, inverse: boolean): boolean {
    let num: number;
    let den: number;
    if (right) {
      num = this.aN * this.t;
      den = this.bN * (this.m + n) * (this.t - 1);
    } else {
      num = this.bN * Math.max(0, this.m - n + 1) * this.t;
      den = this.aN * (this.t - 1);
    }
    if (inverse) [num, den] = [den, num];
    if (num < 2 ** 48 && den < 2 ** 48 && Number.isSafeInteger(num) && Number.isSafeInteger(den)) return r.bernoulliSmall(num, den);
    const f = this.factor(right, n);
    return inverse ? r.bernoulli(f.den, f.num) : r.bernoulli(f.num, f.den);
  }

  /**
   * Exact X with P(X = x) proportional to rho^x, x >= 0, as X = t V + U: V counts successes of
   * Bernoulli(rho^t) (its law is geometric with ratio rho^t) and U in [0, t) is uniform accepted
   * with probability rho^U; this takes O(1) expected coins instead of O(t).
   */
  private geometric(r: ExactRandom): number {
    const t = this.t;
    let x = 0;
    while (r.bernoulli(this.blockNum, this.blockDen)) x += t;
    const tb = BigInt(t);
    for (;;) {
      const u = r.below(t);
      const ub = BigInt(u);
      if (r.bernoulli((tb - 1n) ** ub, tb ** ub)) return x + u;
    }
  }

  /** One exact Poisson(mu) draw. */
  sample(r: ExactRandom): number {
    for (;;) {
      const x = this.geometric(r);
      const right = r.bit();
      if (!right && x === 0) continue;
      if (!right && x > this.m) continue; // p(k) = 0 for k < 0
      const { peak, scale } = this.side[right ? 0 : 1]!;
      if (!r.bernoulli(scale.num, scale.den)) continue;
      let ok = true;
      if (x >= peak) {
        for (let n = peak + 1; n <= x && ok; n++) ok = this.coin(r, right, n, false);
      } else {
        for (let n = x + 1; n <= peak && ok; n++) ok = this.coin(r, right, n, true);
      }
      if (ok) return right ? this.m + x : this.m - x;
    }
  }
}
