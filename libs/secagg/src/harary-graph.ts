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
  const n = cohort.length;
  if (n < 2) throw new RangeError(`hararyNeighbours: cohort needs at least 2 clients, received ${n}`);
  if (new Set(cohort).size !== n) throw new RangeError('hararyNeighbours: cohort ids must be distinct');
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`hararyNeighbours: k must be a positive integer, received ${k}`);
  if (seed.length !== 32) throw new RangeError(`hararyNeighbours: seed must be 32 bytes, received ${seed.length}`);
  const sorted = [...cohort].sort((a, b) => a - b);
  const out: Neighbourhoods = new Map();
  if (k >= n - 1) {
    for (const u of sorted) out.set(u, sorted.filter((v) => v !== u));
    return out;
  }
  if (k % 2 !== 0) throw new RangeError(`hararyNeighbours: k must be even when k < n - 1, received k=${k} for n=${n}`);
  const order = shuffleInPlace([...sorted], seededRandomBytes(`secagg-graph:${Buffer.from(seed).toString('hex')}`));
  order.forEach((u, p) => {
    const nbrs: number[] = [];
    for (let j = 1; j <= k / 2; j++) nbrs.push(order[(p + j) % n]!, order[(p - j + n) % n]!);
    out.set(u, nbrs.sort((a, b) => a - b));
  });
  return out;
}
