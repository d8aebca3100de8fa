import { seededRandomBytes, shuffleInPlace } from '@fedlora/tensor';

/**
 * The SecAgg+ communication graph (Bell et al. 2020, "Secure Single-Server Aggregation with
 * (Poly)Logarithmic Overhead", CCS, Sec. 3): a random k-regular Harary graph H(k, n). The cohort
 * is shuffled with a public 32-byte seed fixed in the round configuration, and the client at
 * position p is joined to the positions p +- 1 .. p +- k/2 (mod n). Random positions make the
 * corrupted clients in any neighbourhood a random sample, which is what the parameter rule in
 * `chooseSecAggParams` assumes. k >= n - 1 gives the complete graph: full SecAgg (Bonawitz et
 * al. 2017). Every party derives the same graph from (cohort, k, seed), so the server cannot
 * show different neighbourhoods to different clients without the clients' key lists disagreeing.
 */

/** Neighbour lists (sorted ascending, never containing the node itself) for every cohort member. */
export type Neighbourhoods = Map<number, number[]>;

/**
 * Builds H(k, n) over `cohort` (distinct non-negative integer ids) shuffled by `seed`.
 * k must be even and 2 <= k < n - 1, or k >= n - 1 for the complete graph.
 */
export function hararyNeighbours(cohort: readonly number[], k: number, seed: Uint8Array): Neighbourhoods {
  const { sorted, order } = placement(cohort, k, seed);
  const out: Neighbourhoods = new Map();
  if (!order) {
    for (const u of sorted) out.set(u, sorted.filter((v) => v !== u));
    return out;
  }
  order.forEach((u, p) => out.set(u, ring(order, p, k)));
  return out;
}

/**
 * The neighbours of one member `u` in H(k, n): exactly `hararyNeighbours(cohort, k, seed).get(u)`,
 * in O(n log n) for the placement plus O(k log k), instead of O(n k log k) for every list. A
 * client needs only its own neighbourhood; with a thousand clients simulated in one process the
 * full graph per client made the round's graph work quadratic.
 */
export function hararyNeighboursOf(cohort: readonly number[], k: number, seed: Uint8Array, u: number): number[] {
  const { sorted, order } = placement(cohort, k, seed);
  if (!order) {
    if (!sorted.includes(u)) throw new RangeError(`hararyNeighboursOf: ${u} is not in the cohort`);
    return sorted.filter((v) => v !== u);
  }
  const p = order.indexOf(u);
  if (p < 0) throw new RangeError(`hararyNeighboursOf: ${u} is not in the cohort`);
  return ring(order, p, k);
}

/** Checks the arguments; returns the sorted cohort and, unless the graph is complete, the shuffled ring order. */
function placement(cohort: readonly number[], k: number, seed: Uint8Array): { sorted: number[]; order?: number[] } {
  const n = cohort.length;
  if (n < 2) throw new RangeError(`hararyNeighbours: cohort needs at least 2 clients, received ${n}`);
  if (new Set(cohort).size !== n) throw new RangeError('hararyNeighbours: cohort ids must be distinct');
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`hararyNeighbours: k must be a positive integer, received ${k}`);
  if (seed.length !== 32) throw new RangeError(`hararyNeighbours: seed must be 32 bytes, received ${seed.length}`);
  const sorted = [...cohort].sort((a, b) => a - b);
  if (k >= n - 1) return { sorted };
  if (k % 2 !== 0) throw new RangeError(`hararyNeighbours: k must be even when k < n - 1, received k=${k} for n=${n}`);
  return { sorted, order: shuffleInPlace([...sorted], seededRandomBytes(`secagg-graph:${Buffer.from(seed).toString('hex')}`)) };
}

/** The members at ring positions p +- 1 .. p +- k/2 (mod n), sorted ascending. */
function ring(order: readonly number[], p: number, k: number): number[] {
  const n = order.length;
  const nbrs: number[] = [];
  for (let j = 1; j <= k / 2; j++) nbrs.push(order[(p + j) % n]!, order[(p - j + n) % n]!);
  return nbrs.sort((a, b) => a - b);
}
