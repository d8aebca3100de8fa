/**
 * RDP -> (epsilon, delta) conversions. Both are named: `classic` is Mironov 2017, `improved`
 * (the default) is Balle, Barthe, Gaboardi, Hsu, Sato 2020, as dp_accounting and Opacus use it.
 */

/** Which RDP -> (epsilon, delta) conversion to use. */
export type Conversion = 'improved' | 'classic';

function check(orders: readonly number[], rdp: readonly number[]): void {
  if (orders.length !== rdp.length) throw new RangeError(`orders and rdp must have the same length, received ${orders.length} and ${rdp.length}`);
  if (orders.length === 0) throw new RangeError('orders must not be empty');
  for (let i = 0; i < orders.length; i++) {
    if (!(orders[i]! >= 1)) throw new RangeError(`orders must be >= 1, received ${orders[i]}`);
    if (!(rdp[i]! >= 0)) throw new RangeError(`rdp values must be >= 0, received ${rdp[i]} at order ${orders[i]}`);
  }
}

function checkConversion(c: string): asserts c is Conversion {
  if (c !== 'improved' && c !== 'classic') throw new RangeError(`conversion must be "improved" or "classic", received "${c}"`);
}

/**
 * Smallest epsilon over the orders such that the mechanism is (epsilon, delta)-DP.
 * classic: eps = rdp - log(delta)/(alpha - 1) (Mironov 2017, Proposition 3).
 * improved: eps = rdp + log1p(-1/alpha) - log(delta alpha)/(alpha - 1) (Balle et al. 2020,
 * Theorem 21), used for alpha > 1.01 as in dp_accounting's `compute_epsilon`; an order whose
 * RDP r satisfies delta^2 + expm1(-r) > 0 gives epsilon 0 (the KL bound delta <= sqrt(1-e^-r)).
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: Conversion = 'improved',
): { epsilon: number; order: number } {
  check(orders, rdp);
  checkConversion(conversion);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), received ${delta}`);
  let best = Infinity;
  let bestOrder = orders[0]!;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const r = rdp[i]!;
    let eps: number;
    if (!Number.isFinite(r)) eps = Infinity;
    else if (conversion === 'classic') eps = a > 1 ? r - Math.log(delta) / (a - 1) : Infinity;
    else if (delta * delta + Math.expm1(-r) > 0) eps = 0;
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/**
 * Smallest delta over the orders such that the mechanism is (epsilon, delta)-DP.
 * classic: delta = exp((alpha - 1)(rdp - eps)) (Mironov 2017, Proposition 3 solved for delta).
 * improved: log delta = min(1/2 log(1 - e^-r), (alpha-1)(r - eps + log1p(-1/alpha)) - log(alpha))
 * (Balle et al. 2020, Theorem 21; dp_accounting `compute_delta`), capped at 1.
 */
export function rdpToDelta(
  orders: readonly number[],
  rdp: readonly number[],
  epsilon: number,
  conversion: Conversion = 'improved',
): { delta: number; order: number } {
  check(orders, rdp);
  checkConversion(conversion);
  if (!(epsilon >= 0)) throw new RangeError(`epsilon must be >= 0, received ${epsilon}`);
  let best = Infinity;
  let bestOrder = orders[0]!;
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const r = rdp[i]!;
    let logDelta: number;
    if (!Number.isFinite(r)) logDelta = 0;
    else if (conversion === 'classic') logDelta = a > 1 ? (a - 1) * (r - epsilon) : 0;
    else {
      logDelta = 0.5 * Math.log1p(-Math.exp(-r));
      if (a > 1.01) logDelta = Math.min(logDelta, (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a));
    }
    if (logDelta < best) {
      best = logDelta;
      bestOrder = a;
    }
  }
  return { delta: Math.min(Math.exp(best), 1), order: bestOrder };
}
