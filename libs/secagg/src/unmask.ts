import { SecAggError, ensure } from './errors.js';
import type { Neighbourhoods } from './harary-graph.js';
import { bytesEqual, commitSeed, x25519Agreer, x25519PublicKey } from './key-agreement.js';
import type { MaskTerm } from './mask-prg.js';
import { pairMaskKey, pairSign, selfMaskKey, shareX } from './masking.js';
import type { SignedKeys, UnmaskSharesMsg } from './messages.js';
import { shamirCombine, shamirCombineMany, sharesOnPolynomial, type ShamirShare } from './shamir.js';

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

/** A revealed share that contradicts the secret its owner committed to. */
export type BadShare = { revealer: number; of: number };

/** No subset of the shares of client `of` verified: it dealt inconsistent shares, or most of their revealers lied. */
export class ReconstructionError extends SecAggError {
  constructor(
    readonly of: number,
    message: string,
  ) {
    super('reconstruction', message);
  }
}

/** Most t-subsets tried per secret before giving up (bounds a malicious revealer's cost to the server). */
export const MAX_RECONSTRUCTION_TRIALS = 256;

type HeldShare = ShamirShare & { revealer: number };

/**
 * The t-subsets of `m` shares tried, in order: the first t, then the first t without share i for
 * each i, then without each pair (i, j), up to `MAX_RECONSTRUCTION_TRIALS`. Any single bad share
 * is therefore found within m + 1 trials and any two within about m^2 / 2 (when m - t >= 2).
 */
function* subsets(m: number, t: number): Generator<number[]> {
  const firstT = (skip: ReadonlySet<number>) => {
    const out: number[] = [];
    for (let i = 0; i < m && out.length < t; i++) if (!skip.has(i)) out.push(i);
    return out.length === t ? out : undefined;
  };
  let trials = 0;
  const skips: Array<Set<number>> = [new Set()];
  for (let i = 0; i < m; i++) skips.push(new Set([i]));
  for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) skips.push(new Set([i, j]));
  for (const skip of skips) {
    if (trials >= MAX_RECONSTRUCTION_TRIALS) return;
    const pick = firstT(skip);
    if (!pick) continue;
    trials++;
    yield pick;
  }
}

function tryCombine(shares: readonly ShamirShare[]): Uint8Array | undefined {
  try {
    return shamirCombine(shares, 32);
  } catch (e) {
    if (e instanceof RangeError) return undefined; // corrupted shares interpolate to a value that does not fit
    throw e;
  }
}

/**
 * Reconstructs one secret robustly: t-subsets of the revealed shares (see `subsets`) until one
 * reconstructs to a secret that passes `check` (its public commitment). Throws
 * SecAggError('reconstruction') when no subset within the bound verifies.
 */
function reconstruct(shares: readonly HeldShare[], t: number, check: (secret: Uint8Array) => boolean, what: string, of: number): { secret: Uint8Array; pick: number[] } {
  for (const pick of subsets(shares.length, t)) {
    const secret = tryCombine(pick.map((i) => shares[i]!));
    if (!secret) continue;
    if (check(secret)) return { secret, pick };
    secret.fill(0);
  }
  throw new ReconstructionError(of, `no ${t} of the ${shares.length} revealed ${what} shares of client ${of} reconstruct a secret matching its commitment (tried up to ${MAX_RECONSTRUCTION_TRIALS} subsets)`);
}

/**
 * The revealed shares off the polynomial of a verified secret: every share outside the verified
 * subset must lie on the polynomial through that subset (sharesOnPolynomial, O(t) per share).
 */
function inconsistentShares(jobs: ReadonlyArray<{ u: number; shares: readonly HeldShare[]; pick: number[] }>): BadShare[] {
  const checks = jobs.map((j) => {
    const chosen = new Set(j.pick);
    return { u: j.u, basis: j.pick.map((i) => j.shares[i]!), others: j.shares.filter((_, i) => !chosen.has(i)) };
  });
  const on = sharesOnPolynomial(checks);
  const bad: BadShare[] = [];
  checks.forEach((c, i) => c.others.forEach((sh, k) => on[i]![k] || bad.push({ revealer: sh.revealer, of: c.u })));
  return bad;
}

/**
 * The mask terms whose addition to the running sum leaves exactly the survivors' inputs, and the
 * revealed shares found inconsistent. Fast path: the first t shares of every secret, interpolated
 * in one batch and checked against the commitments; any secret that fails there is reconstructed
 * robustly from other subsets, so one bad share no longer aborts the round.
 */
export function unmaskTerms(inp: UnmaskInput): { terms: MaskTerm[]; badShares: BadShare[] } {
  const { t, session } = inp;
  const alive = new Set(inp.survivors);
  const bShares = new Map<number, HeldShare[]>();
  const sShares = new Map<number, HeldShare[]>();
  const push = (m: Map<number, HeldShare[]>, of: number, share: HeldShare) => {
    const list = m.get(of);
    if (list) list.push(share);
    else m.set(of, [share]);
  };
  for (const r of inp.responses) {
    for (const { of, y } of r.bShares) push(bShares, of, { x: shareX(r.sender), y, revealer: r.sender });
    for (const { of, y } of r.sShares) push(sShares, of, { x: shareX(r.sender), y, revealer: r.sender });
  }
  const need = (u: number, shares: HeldShare[] | undefined, what: string) => {
    ensure((shares?.length ?? 0) >= t, 'threshold', `${shares?.length ?? 0} ${what} shares of client ${u} (need ${t})`);
    return shares!;
  };
  const selfCheck = (u: number) => (b: Uint8Array) => bytesEqual(commitSeed(b), inp.adverts.get(u)!.bCommit);
  const keyCheck = (u: number) => (sk: Uint8Array) => bytesEqual(x25519PublicKey(sk), inp.adverts.get(u)!.sPk);
  const jobs = [
    ...inp.survivors.map((u) => ({ u, shares: need(u, bShares.get(u), 'self-mask'), check: selfCheck(u), what: 'self-mask' })),
    ...inp.dropped.map((u) => ({ u, shares: need(u, sShares.get(u), 'key'), check: keyCheck(u), what: 'key' })),
  ];
  let fast: Array<Uint8Array | undefined>;
  try {
    fast = shamirCombineMany(jobs.map((j) => j.shares.slice(0, t)), 32);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    fast = jobs.map(() => undefined);
  }
  const firstT = Array.from({ length: t }, (_, i) => i);
  const solved = jobs.map((j, i) => {
    const f = fast[i];
    if (f && j.check(f)) return { u: j.u, shares: j.shares, pick: firstT, secret: f };
    f?.fill(0);
    return { u: j.u, shares: j.shares, ...reconstruct(j.shares, t, j.check, j.what, j.u) };
  });
  // Every other revealed share is checked against the verified secret, so a liar is named even when its share was not needed.
  const badShares = inconsistentShares(solved);
  const secrets = solved.map((x) => x.secret);
  const terms: MaskTerm[] = [];
  inp.survivors.forEach((u, i) => {
    const b = secrets[i]!;
    terms.push({ key: selfMaskKey(b, session, u), sign: -1 });
    b.fill(0);
  });
  inp.dropped.forEach((u, i) => {
    const sk = secrets[inp.survivors.length + i]!;
    const agree = x25519Agreer(sk);
    for (const v of inp.graph.get(u)!.filter((x) => alive.has(x))) {
      const secret = agree(inp.adverts.get(v)!.sPk);
      // v added pairSign(v, u) * PRG(k_uv); subtract exactly that.
      terms.push({ key: pairMaskKey(secret, session, u, v), sign: pairSign(v, u) === 1 ? -1 : 1 });
      secret.fill(0);
    }
    sk.fill(0);
  });
  return { terms, badShares };
}
