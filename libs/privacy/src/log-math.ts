/**
 * Numerics in log space for the RDP accountant: log-add, log-sub, log erfc and generalised
 * binomial coefficients, accurate to about 1e-14 relative so that epsilons match Opacus / TF
 * Privacy to many digits.
 */

/** log(exp(a) + exp(b)) without overflow. */
export function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (hi === -Infinity) return -Infinity;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(exp(a) - exp(b)) for a >= b; throws if a < b (as Opacus' _log_sub). */
export function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError(`logSub needs a >= b, received a=${a}, b=${b}`);
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = b - a;
  // log(1 - e^d) = log(-expm1(d)), accurate for d near 0.
  return a + Math.log(-Math.expm1(d));
}

/** erf(x) by its Taylor series; used for |x| < 1 where it converges fast and cancels little. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 100; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/**
 * log(erfc(x) * sqrt(pi) * exp(x^2) / (2x)) for x >= 1, by the even contraction of Laplace's
 * continued fraction erfc(x) = 2x e^{-x^2}/sqrt(pi) / (2x^2+1 - 1*2/(2x^2+5 - 3*4/(2x^2+9 - ...)))
 * (Abramowitz & Stegun 7.1.14), evaluated with the modified Lentz algorithm.
 */
function logErfcScaledCf(x: number): number {
  const tiny = 1e-300;
  const x2 = 2 * x * x;
  let f = x2 + 1;
  let c = f;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = -(2 * n - 1) * (2 * n);
    const b = x2 + 1 + 4 * n;
    d = b + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

/** log(erfc(x)) for any real x, accurate also far in the tail (x up to ~1e150). */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.LN2;
  if (x < 1 && x > -1) return Math.log1p(-erfSeries(x));
  if (x <= -1) return Math.log(2 - Math.exp(logErfc(-x)));
  return Math.log(2 * x) - x * x - 0.5 * Math.log(Math.PI) + logErfcScaledCf(x);
}

/** erfc(x). */
export function erfc(x: number): number {
  return Math.exp(logErfc(x));
}

/** log of |binom(alpha, k)| for real alpha and integer k >= 0, with its sign (generalised binomial). */
export function logAbsBinom(alpha: number, k: number): { log: number; sign: 1 | -1 | 0 } {
  let log = 0;
  let sign: 1 | -1 = 1;
  for (let j = 0; j < k; j++) {
    const f = (alpha - j) / (j + 1);
    if (f === 0) return { log: -Infinity, sign: 0 };
    if (f < 0) sign = sign === 1 ? -1 : 1;
    log += Math.log(Math.abs(f));
  }
  return { log, sign };
}

/** log(n choose k) for integers 0 <= k <= n, summed exactly term by term for moderate n. */
export function logChoose(n: number, k: number): number {
  if (k < 0 || k > n) return -Infinity;
  const m = Math.min(k, n - k);
  let s = 0;
  for (let j = 0; j < m; j++) s += Math.log(n - j) - Math.log(j + 1);
  return s;
}
