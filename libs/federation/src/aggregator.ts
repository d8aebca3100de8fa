import type { NamedTensors } from '@fedlora/tensor';
import type { TensorLayout } from './types.js';

/**
 * Example-weighted mean of client deltas (McMahan et al. 2017, FedAvg):
 *   Δ = Σ_i n_i Δ_i / Σ_i n_i
 * Accumulates in float64 as each complete update arrives, so memory is O(d) whatever the
 * number of clients; an update is added whole or not at all.
 */
export class WeightedMeanAggregator {
  private readonly sums = new Map<string, Float64Array>();
  private totalWeight = 0;
  private count = 0;

  constructor(private readonly layout: TensorLayout[]) {
    for (const { name, shape } of layout) this.sums.set(name, new Float64Array(shape.reduce((a, b) => a * b, 1)));
  }

  /** Adds one client's delta with weight `weight` (> 0, finite). */
  add(delta: NamedTensors, weight: number): void {
    if (!Number.isFinite(weight) || weight <= 0) throw new RangeError(`aggregation weight must be a positive finite number, received ${weight}`);
    for (const [name, sum] of this.sums) {
      const d = delta.get(name);
      if (!d || d.data.length !== sum.length) throw new RangeError(`delta tensor "${name}" missing or of the wrong size`);
    }
    for (const [name, sum] of this.sums) {
      const d = delta.get(name)!.data;
      for (let i = 0; i < sum.length; i++) sum[i] = sum[i]! + weight * d[i]!;
    }
    this.totalWeight += weight;
    this.count++;
  }

  /** Number of updates added. */
  get size(): number {
    return this.count;
  }

  /** The weighted mean; throws if nothing was added. */
  mean(): NamedTensors {
    if (this.count === 0) throw new RangeError('cannot average zero updates');
    const out: NamedTensors = new Map();
    for (const { name, shape } of this.layout) {
      const sum = this.sums.get(name)!;
      const data = new Float32Array(sum.length);
      for (let i = 0; i < sum.length; i++) data[i] = sum[i]! / this.totalWeight;
      out.set(name, { shape: [...shape], data });
    }
    return out;
  }
}
