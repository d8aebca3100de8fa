import { ensure } from './errors.js';
import type { Neighbourhoods } from './harary-graph.js';
import { bytesEqual, commitSeed, x25519Agreer, x25519PublicKey } from './key-agreement.js';
import type { MaskTerm } from './mask-prg.js';
import { pairMaskKey, pairSign, selfMaskKey, shareX } from './masking.js';
import type { SignedKeys, UnmaskSharesMsg } from './messages.js';
import { shamirCombineMany, type ShamirShare } from './shamir.js';

/**
 * The server's unmasking step (Bonawitz et al. 2017, round 4; Bell et al. 2020 with
 * neighbourhoods): from the revealed shares, reconstruct every survivor's self-mask seed b_u and
 * every dropped client's masking key s_u, check each against its public commitment (SHA-256 of
 * b_u, or the advertised X25519 public key of s_u) so a client that sent a bad share cannot
 * silently corrupt the sum, and list the masks to subtract: the survivors' self masks, and for
 * each dropped u the pairwise mask every surviving neighbour v added for (v, u).
 */

/** Inputs of `unmaskTerms`. */
export type UnmaskInput = {
  t: number;
  session: Uint8Array;
  graph: Neighbourhoods;
  adverts: ReadonlyMap<number, SignedKeys>;
  /** Clients whose masked input is in the sum. */
  survivors: readonly number[];
  /** Clients that shared keys but whose input is not in the sum. */
  dropped: readonly number[];
  responses: Iterable<UnmaskSharesMsg>;
};

/** The mask terms whose addition to the running sum leaves exactly the survivors' inputs. */
export function unmaskTerms(inp: UnmaskInput): MaskTerm[] {
  const { t, session } = inp;
  const alive = new Set(inp.survivors);
  const bShares = new Map<number, ShamirShare[]>();
  const sShares = new Map<number, ShamirShare[]>();
  const push = (m: Map<number, ShamirShare[]>, of: number, share: ShamirShare) => {
    const list = m.get(of);
    if (list) list.push(share);
    else m.set(of, [share]);
  };
  for (const r of inp.responses) {
    for (const { of, y } of r.bShares) push(bShares, of, { x: shareX(r.sender), y });
    for (const { of, y } of r.sShares) push(sShares, of, { x: shareX(r.sender), y });
  }
  const need = (u: number, shares: ShamirShare[] | undefined, what: string) => {
    ensure((shares?.length ?? 0) >= t, 'threshold', `${shares?.length ?? 0} ${what} shares of client ${u} (need ${t})`);
    return shares!.slice(0, t);
  };
  const seeds = shamirCombineMany(inp.survivors.map((u) => need(u, bShares.get(u), 'self-mask')), 32);
  const keys = shamirCombineMany(inp.dropped.map((u) => need(u, sShares.get(u), 'key')), 32);
  const terms: MaskTerm[] = [];
  inp.survivors.forEach((u, i) => {
    const b = seeds[i]!;
    ensure(bytesEqual(commitSeed(b), inp.adverts.get(u)!.bCommit), 'reconstruction', `reconstructed self-mask seed of client ${u} does not match its commitment`);
    terms.push({ key: selfMaskKey(b, session, u), sign: -1 });
    b.fill(0);
  });
  inp.dropped.forEach((u, i) => {
    const sk = keys[i]!;
    ensure(bytesEqual(x25519PublicKey(sk), inp.adverts.get(u)!.sPk), 'reconstruction', `reconstructed key of dropped client ${u} does not match its advertised public key`);
    const agree = x25519Agreer(sk);
    for (const v of inp.graph.get(u)!.filter((x) => alive.has(x))) {
      const secret = agree(inp.adverts.get(v)!.sPk);
      // v added pairSign(v, u) * PRG(k_uv); subtract exactly that.
      terms.push({ key: pairMaskKey(secret, session, u, v), sign: pairSign(v, u) === 1 ? -1 : 1 });
      secret.fill(0);
    }
    sk.fill(0);
  });
  return terms;
}
