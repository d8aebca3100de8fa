/**
 * Who leaves the round after the receipt stage (see STAGES in messages.ts). A receipt "r rejects x"
 * says r could not open x's sealed shares; then r and x cannot both stay, since r would hold no share
 * of x and would not mask with it. The server cannot tell who lies (a receiver can falsely reject an
 * honest sender), so it removes a smallest-looking set of clients that leaves no rejection between
 * two kept clients: greedily the client on the most rejections, preferring the rejected one on a tie,
 * then the lower id. One malicious member is therefore always the one removed when it garbles shares
 * to, or falsely rejects, two or more neighbours; falsely rejecting a single neighbour removes that
 * neighbour, which costs the round one member, never the round itself.
 */

/** Clients to remove, each with why (ids and counts only, no secrets). */
export function resolveRejections(receipts: ReadonlyMap<number, readonly number[]>): Map<number, string> {
  const responded = new Set(receipts.keys());
  const removed = new Map<number, string>();
  const accusedBy = new Map<number, number[]>();
  for (const [r, list] of receipts) for (const x of list) accusedBy.set(x, [...(accusedBy.get(x) ?? []), r]);
  // A rejected client that sent no receipt is out anyway; it is still named.
  for (const [x, by] of accusedBy) if (!responded.has(x)) removed.set(x, garbled(by));
  let edges = [...receipts].flatMap(([r, list]) => list.filter((x) => responded.has(x)).map((x) => ({ r, x })));
  while (edges.length > 0) {
    const degree = new Map<number, number>();
    const rejected = new Map<number, number>();
    for (const { r, x } of edges) {
      degree.set(r, (degree.get(r) ?? 0) + 1);
      degree.set(x, (degree.get(x) ?? 0) + 1);
      rejected.set(x, (rejected.get(x) ?? 0) + 1);
    }
    const score = (v: number): [number, number, number] => [degree.get(v)!, rejected.get(v) ?? 0, -v];
    const worst = [...degree.keys()].reduce((a, b) => (compare(score(b), score(a)) > 0 ? b : a));
    const by = edges.filter((e) => e.x === worst).map((e) => e.r);
    const claims = edges.filter((e) => e.r === worst).map((e) => e.x);
    removed.set(worst, by.length >= claims.length ? garbled(by) : `reported the shares of client(s) ${claims.join(', ')} as not opening, more rejections than any other client (its receipt is not trusted)`);
    edges = edges.filter((e) => e.r !== worst && e.x !== worst);
  }
  return removed;
}

function garbled(by: readonly number[]): string {
  return `its share ciphertext(s) to client(s) ${[...by].sort((a, b) => a - b).join(', ')} did not open (reported by them)`;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}
