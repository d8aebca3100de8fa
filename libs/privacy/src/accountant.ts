import { rdpToDelta, rdpToEpsilon, type Conversion } from './conversion.js';
import { resolveOrders } from './orders.js';
import { rdpDiscreteGaussian, rdpGaussian, rdpPoissonSubsampled, rdpSampledGaussian, rdpSkellam } from './rdp-mechanisms.js';

/** Poisson-subsampled Gaussian (DP-SGD step, or DP-FedAvg round with Poisson client sampling), sensitivity 1. */
export interface SampledGaussianEvent {
  mechanism: 'sampled_gaussian';
  noiseMultiplier: number;
  samplingRate: number;
  steps: number;
}
/** Gaussian mechanism with noise multiplier z = sigma / sensitivity, repeated `steps` times. */
export interface GaussianEvent {
  mechanism: 'gaussian';
  noiseMultiplier: number;
  steps: number;
}
/**
 * Discrete Gaussian on integers: `sigma` is each party's std parameter; `parties` (default 1)
 * is the number of survivors whose noise was actually summed; `dimension` matters only when
 * parties > 1 (Kairouz-Liu-Steinke 2021). Sensitivities are in the integer domain.
 */
export interface DiscreteGaussianEvent {
  mechanism: 'discrete_gaussian';
  sigma: number;
  l2Sensitivity: number;
  l1Sensitivity?: number;
  parties?: number;
  dimension?: number;
  samplingRate?: number;
  steps: number;
}
/** Skellam mechanism: `variance` is the aggregate per-coordinate variance actually summed (survivors x share). */
export interface SkellamEvent {
  mechanism: 'skellam';
  variance: number;
  l1Sensitivity: number;
  l2Sensitivity: number;
  samplingRate?: number;
  steps: number;
}
/** An RDP curve accounted elsewhere, composed as given (a target order uses the value at the smallest listed order >= it). */
export interface RdpCurveEvent {
  mechanism: 'rdp';
  orders: number[];
  values: number[];
}
/** One accountable release (or `steps` identical releases). */
export type PrivacyEvent = SampledGaussianEvent | GaussianEvent | DiscreteGaussianEvent | SkellamEvent | RdpCurveEvent;

/** The mechanism names the accountant knows. */
export const MECHANISMS = ['sampled_gaussian', 'gaussian', 'discrete_gaussian', 'skellam', 'rdp'] as const;

function num(e: Record<string, unknown>, key: string, where: string, opts: { min?: number; max?: number; integer?: boolean; optional?: boolean } = {}): void {
  const v = e[key];
  if (v === undefined && opts.optional) return;
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`${where}.${key} must be a number, received ${JSON.stringify(v)}`);
  if (opts.integer && !Number.isInteger(v)) throw new RangeError(`${where}.${key} must be an integer, received ${v}`);
  if (opts.min !== undefined && v < opts.min) throw new RangeError(`${where}.${key} must be >= ${opts.min}, received ${v}`);
  if (opts.max !== undefined && v > opts.max) throw new RangeError(`${where}.${key} must be <= ${opts.max}, received ${v}`);
}

/** Checks an event's shape and values (TypeError / RangeError naming the field); returns it typed. */
export function validateEvent(event: unknown, where = 'event'): PrivacyEvent {
  if (typeof event !== 'object' || event === null) throw new TypeError(`${where} must be an object, received ${JSON.stringify(event)}`);
  const e = event as Record<string, unknown>;
  switch (e['mechanism']) {
    case 'sampled_gaussian':
      num(e, 'noiseMultiplier', where, { min: 0 });
      num(e, 'samplingRate', where, { min: 0, max: 1 });
      num(e, 'steps', where, { min: 0, integer: true });
      break;
    case 'gaussian':
      num(e, 'noiseMultiplier', where, { min: 0 });
      num(e, 'steps', where, { min: 0, integer: true });
      break;
    case 'discrete_gaussian':
      num(e, 'sigma', where, { min: 0 });
      num(e, 'l2Sensitivity', where, { min: 0 });
      num(e, 'l1Sensitivity', where, { min: 0, optional: true });
      num(e, 'parties', where, { min: 1, integer: true, optional: true });
      num(e, 'dimension', where, { min: 1, integer: true, optional: true });
      num(e, 'samplingRate', where, { min: 0, max: 1, optional: true });
      num(e, 'steps', where, { min: 0, integer: true });
      break;
    case 'skellam':
      num(e, 'variance', where, { min: 0 });
      num(e, 'l1Sensitivity', where, { min: 0 });
      num(e, 'l2Sensitivity', where, { min: 0 });
      num(e, 'samplingRate', where, { min: 0, max: 1, optional: true });
      num(e, 'steps', where, { min: 0, integer: true });
      break;
    case 'rdp': {
      const o = e['orders'];
      const v = e['values'];
      if (!Array.isArray(o) || !Array.isArray(v)) throw new TypeError(`${where}.orders and ${where}.values must be arrays`);
      if (o.length !== v.length || o.length === 0) throw new RangeError(`${where}.orders and ${where}.values must be non-empty and of equal length, received ${o.length} and ${v.length}`);
      o.forEach((x, i) => {
        if (typeof x !== 'number' || !(x > 1)) throw new RangeError(`${where}.orders[${i}] must be a number > 1, received ${JSON.stringify(x)}`);
      });
      v.forEach((x, i) => {
        if (typeof x !== 'number' || !(x >= 0)) throw new RangeError(`${where}.values[${i}] must be a number >= 0, received ${JSON.stringify(x)}`);
      });
      break;
    }
    default:
      throw new RangeError(`${where}.mechanism must be one of ${MECHANISMS.join(', ')}, received ${JSON.stringify(e['mechanism'])}`);
  }
  return e as unknown as PrivacyEvent;
}

function curveAt(orders: readonly number[], values: readonly number[], alpha: number): number {
  let best = Infinity;
  let bestOrder = Infinity;
  for (let i = 0; i < orders.length; i++) {
    if (orders[i]! >= alpha && orders[i]! < bestOrder) {
      bestOrder = orders[i]!;
      best = values[i]!;
    }
  }
  return best;
}

/** RDP of one event (all its steps) at one order. */
export function eventRdp(event: PrivacyEvent, alpha: number): number {
  switch (event.mechanism) {
    case 'sampled_gaussian':
      if (event.steps === 0) return 0;
      return event.steps * rdpSampledGaussian(event.samplingRate, event.noiseMultiplier, alpha);
    case 'gaussian':
      if (event.steps === 0) return 0;
      return event.steps * rdpGaussian(event.noiseMultiplier, alpha);
    case 'discrete_gaussian': {
      if (event.steps === 0) return 0;
      const eps = (a: number): number => rdpDiscreteGaussian(event, a);
      return event.steps * rdpPoissonSubsampled(event.samplingRate ?? 1, eps, alpha);
    }
    case 'skellam': {
      if (event.steps === 0) return 0;
      const eps = (a: number): number => rdpSkellam(event.variance, event.l1Sensitivity, event.l2Sensitivity, a);
      return event.steps * rdpPoissonSubsampled(event.samplingRate ?? 1, eps, alpha);
    }
    case 'rdp':
      return curveAt(event.orders, event.values, alpha);
  }
}

/** Composed RDP curve of heterogeneous events at the given orders: RDP adds under composition (Mironov 2017, Proposition 1). */
export function composeRdp(events: readonly PrivacyEvent[], orders: readonly number[]): number[] {
  const out = new Array<number>(orders.length).fill(0);
  events.forEach((e, j) => {
    const ev = validateEvent(e, `events[${j}]`);
    for (let i = 0; i < orders.length; i++) out[i] = out[i]! + eventRdp(ev, orders[i]!);
  });
  return out;
}

/** Epsilon of a list of events at delta (orders: preset name or list; conversion: improved by default). */
export function epsilonOf(
  events: readonly PrivacyEvent[],
  opts: { delta: number; orders?: string | readonly number[]; conversion?: Conversion },
): { epsilon: number; order: number } {
  const orders = resolveOrders(opts.orders);
  return rdpToEpsilon(orders, composeRdp(events, orders), opts.delta, opts.conversion);
}

/** Delta of a list of events at epsilon. */
export function deltaOf(
  events: readonly PrivacyEvent[],
  opts: { epsilon: number; orders?: string | readonly number[]; conversion?: Conversion },
): { delta: number; order: number } {
  const orders = resolveOrders(opts.orders);
  return rdpToDelta(orders, composeRdp(events, orders), opts.epsilon, opts.conversion);
}

/** Options of calibrateNoise. */
export interface CalibrateOptions {
  targetEpsilon: number;
  delta: number;
  samplingRate: number;
  steps: number;
  orders?: string | readonly number[];
  conversion?: Conversion;
  /** Resolution of the answer (default 1e-4). */
  tolerance?: number;
}

/**
 * Smallest noise multiplier z (to `tolerance`) whose sampled-Gaussian epsilon at delta is within
 * targetEpsilon: epsilon is non-increasing in z, so bracket by doubling and bisect (as Opacus'
 * `get_noise_multiplier`, but bisecting on z to a fixed resolution rather than on epsilon).
 */
export function calibrateNoise(opts: CalibrateOptions): number {
  const { targetEpsilon, delta, samplingRate, steps, tolerance = 1e-4 } = opts;
  if (!(targetEpsilon > 0)) throw new RangeError(`targetEpsilon must be > 0, received ${targetEpsilon}`);
  if (!(tolerance > 0)) throw new RangeError(`tolerance must be > 0, received ${tolerance}`);
  const orders = resolveOrders(opts.orders);
  const eps = (z: number): number => {
    const ev: SampledGaussianEvent = { mechanism: 'sampled_gaussian', noiseMultiplier: z, samplingRate, steps };
    return rdpToEpsilon(orders, composeRdp([ev], orders), delta, opts.conversion).epsilon;
  };
  let lo = 0;
  let hi = 1;
  while (eps(hi) > targetEpsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e7) throw new RangeError(`no noise multiplier below 1e7 reaches epsilon ${targetEpsilon} at delta ${delta}`);
  }
  while (hi - lo > tolerance / 2) {
    const mid = (lo + hi) / 2;
    if (eps(mid) <= targetEpsilon) hi = mid;
    else lo = mid;
  }
  // Report the smallest point of the tolerance grid that stays within the target.
  const digits = Math.max(0, Math.ceil(-Math.log10(tolerance)) + 2);
  const onGrid = (k: number): number => Number((k * tolerance).toFixed(digits));
  let k = Math.ceil(hi / tolerance - 1e-9);
  while (eps(onGrid(k)) > targetEpsilon) k++;
  while (k > 1 && eps(onGrid(k - 1)) <= targetEpsilon) k--;
  return onGrid(k);
}
