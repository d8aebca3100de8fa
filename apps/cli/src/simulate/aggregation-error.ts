/**
 * The aggregation error of federated LoRA, which only a simulator can see (it needs every
 * client's update): averaging A and B separately gives mean(B_i) mean(A_i), while the average
 * of the clients' actual weight updates is mean(B_i A_i). Sun et al. 2024 ("Improving LoRA in
 * Privacy-preserving Federated Learning", ICLR, Section 3) name this discordance the first
 * problem of LoRA in federated learning; FFA-LoRA removes it by freezing A (A_i = A for all i,
 * so mean(B_i A) = mean(B_i) A exactly).
 */
import type { LocalTrainer } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';

/** One client's adapter after local training and its weight in the round's average. */
export interface WeightedAdapter {
  adapter: NamedTensors;
  weight: number;
}

/**
 * ||mean(B_i A_i) - mean(B_i) mean(A_i)||_F / ||mean(B_i A_i)||_F over every adapted module
 * (Frobenius norms over all modules together), with the weighted mean the round's aggregation
 * uses. Computed in float64. 0 when every product is zero (nothing to average yet).
 */
export function loraAggregationError(clients: readonly WeightedAdapter[]): number {
  if (clients.length === 0) throw new RangeError('loraAggregationError: needs at least one client adapter, received 0');
  const total = clients.reduce((s, c) => s + c.weight, 0);
  if (!(total > 0)) throw new RangeError(`loraAggregationError: the weights must sum to > 0, received ${total}`);
  let diffSq = 0;
  let refSq = 0;
  for (const [nameA, a0] of clients[0]!.adapter) {
    if (!/(^|\.)lora_A(\.|$)/.test(nameA)) continue;
    const nameB = nameA.replace(/(^|\.)lora_A(\.|$)/, '$1lora_B$2');
    const b0 = clients[0]!.adapter.get(nameB);
    if (!b0) throw new RangeError(`loraAggregationError: "${nameA}" has no matching "${nameB}"`);
    const [r, dIn] = a0.shape as [number, number];
    const dOut = b0.shape[0]!;
    const meanA = new Float64Array(r * dIn);
    const meanB = new Float64Array(dOut * r);
    const meanProduct = new Float64Array(dOut * dIn);
    for (const c of clients) {
      const a = c.adapter.get(nameA)!.data;
      const b = c.adapter.get(nameB)!.data;
      const w = c.weight / total;
      for (let k = 0; k < a.length; k++) meanA[k] = meanA[k]! + w * a[k]!;
      for (let k = 0; k < b.length; k++) meanB[k] = meanB[k]! + w * b[k]!;
      addProduct(meanProduct, b, a, dOut, r, dIn, w);
    }
    const ofMeans = new Float64Array(dOut * dIn);
    addProduct(ofMeans, meanB, meanA, dOut, r, dIn, 1);
    for (let k = 0; k < meanProduct.length; k++) {
      const d = meanProduct[k]! - ofMeans[k]!;
      diffSq += d * d;
      refSq += meanProduct[k]! * meanProduct[k]!;
    }
  }
  return refSq > 0 ? Math.sqrt(diffSq / refSq) : 0;
}

/** out += w B A for B [dOut, r] and A [r, dIn], row-major. */
function addProduct(out: Float64Array, b: ArrayLike<number>, a: ArrayLike<number>, dOut: number, r: number, dIn: number, w: number): void {
  for (let o = 0; o < dOut; o++) {
    for (let k = 0; k < r; k++) {
      const bk = w * b[o * r + k]!;
      if (bk === 0) continue;
      const row = o * dIn;
      const aRow = k * dIn;
      for (let d = 0; d < dIn; d++) out[row + d] = out[row + d]! + bk * a[aRow + d]!;
    }
  }
}

/**
 * Records what each simulated client sends (its update, on top of the global adapter it started
 * from) and measures the aggregation error of a round over the clients that were aggregated.
 * `uniform`: the round averages with equal weights (DP-FedAvg), else by example counts (FedAvg).
 */
export function createAggregationProbe(o: { uniform: boolean }) {
  const sent = new Map<number, Map<string, WeightedAdapter>>();

  const wrap = (name: string, inner: LocalTrainer): LocalTrainer => ({
    get numExamples() {
      return inner.numExamples;
    },
    accept: inner.accept?.bind(inner),
    async train(plan, global, progress) {
      const r = await inner.train(plan, global, progress);
      const adapter: NamedTensors = new Map();
      for (const [k, g] of global) {
        const d = r.delta.get(k);
        adapter.set(k, d ? { shape: g.shape, data: Float32Array.from(g.data, (v, i) => v + d.data[i]!) } : g);
      }
      const byClient = sent.get(plan.round) ?? new Map<string, WeightedAdapter>();
      byClient.set(name, { adapter, weight: o.uniform ? 1 : r.numExamples });
      sent.set(plan.round, byClient);
      return r;
    },
  });

  /** The round's error over `participants` (undefined if an update was not seen); forgets the round. */
  const measure = (round: number, participants: readonly string[]): number | undefined => {
    const byClient = sent.get(round);
    sent.delete(round);
    const clients = participants.map((n) => byClient?.get(n));
    if (clients.length === 0 || clients.some((c) => !c)) return undefined;
    return loraAggregationError(clients as WeightedAdapter[]);
  };

  return { wrap, measure };
}
