/**
 * Renyi orders at which the accountant evaluates curves. Presets are named after the library
 * whose default list they copy, so an auditor can reproduce a number with that library.
 */

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Opacus `RDPAccountant.DEFAULT_ALPHAS` (opacus/accountants/rdp.py): [1 + x/10 for x in 1..99] + range(12, 64). */
const OPACUS = [...range(1, 100).map((x) => 1 + x / 10), ...range(12, 64)];

/**
 * dp_accounting `DEFAULT_RDP_ORDERS` (dp_accounting/rdp/rdp_privacy_accountant.py):
 * [1 + x/10 for x in 1..99] + range(11, 64) + [128, 256, 512, 1024].
 */
const DP_ACCOUNTING = [...range(1, 100).map((x) => 1 + x / 10), ...range(11, 64), 128, 256, 512, 1024];

/**
 * TF Privacy `compute_dp_sgd_privacy_lib` orders (tensorflow_privacy/privacy/analysis):
 * [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + range(5, 64) + [128, 256, 512].
 */
const TF_PRIVACY = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];

/** The named order presets. */
export const ORDER_PRESETS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  opacus: Object.freeze(OPACUS),
  'dp-accounting': Object.freeze(DP_ACCOUNTING),
  'tf-privacy': Object.freeze(TF_PRIVACY),
});

/** Preset used when none is named: dp_accounting's (the widest). */
export const DEFAULT_ORDERS_PRESET = 'dp-accounting';

/**
 * A preset name or an explicit list -> a fresh array of orders. Every order must be a number > 1
 * (Infinity allowed); an explicit list is kept in the given order.
 */
export function resolveOrders(spec: string | readonly number[] = DEFAULT_ORDERS_PRESET): number[] {
  if (typeof spec === 'string') {
    const preset = ORDER_PRESETS[spec];
    if (!preset) throw new RangeError(`orders: unknown preset "${spec}", expected one of ${Object.keys(ORDER_PRESETS).join(', ')} or a list of numbers`);
    return [...preset];
  }
  if (!Array.isArray(spec)) throw new TypeError(`orders must be a preset name or an array of numbers, received ${typeof spec}`);
  if (spec.length === 0) throw new RangeError('orders must not be empty');
  for (const a of spec) {
    if (typeof a !== 'number' || Number.isNaN(a) || a <= 1) throw new RangeError(`orders must all be numbers > 1, received ${String(a)}`);
  }
  return [...spec];
}
