import type { RandomBytes } from '@fedlora/tensor';
import { SecAggError, ensure } from './errors.js';
import { deriveGraphSeed } from './graph-seed.js';
import { hararyNeighboursOf } from './harary-graph.js';
import {
  advertiseSigningBytes,
  boxKeyFromShared,
  boxOpen,
  boxSeal,
  bytesEqual,
  commitSeed,
  computeSessionId,
  consistencySigningBytes,
  digest,
  ed25519PublicKey,
  generateX25519,
  ed25519Signer,
  verify,
  x25519Agreer,
  type X25519KeyPair,
} from './key-agreement.js';
import { addMasks, type MaskTerm } from './mask-prg.js';
import { decodeSharePlaintext, encodeSharePlaintext, pairMaskKey, pairSign, selfMaskKey, shareX } from './masking.js';
import { encodeMessage, parseMessage, type RoundConfigMsg, type ServerMsg, type SignedKeys, type Stage } from './messages.js';
import { shamirSplit } from './shamir.js';

/**
 * The client side of SecAgg+ as an explicit state machine (Bonawitz et al. 2017, Fig. 4, with the
 * SecAgg+ neighbourhoods of Bell et al. 2020). `handle(serverBytes)` consumes the server's
 * message for the current stage and returns what to send; any check that fails aborts this
 * client's round (secrets wiped) and throws a SecAggError naming the check. The client trusts
 * nothing from the server: it verifies every key advertisement's Ed25519 signature against the
 * roster, derives the session id and the graph itself, checks that decrypted shares are bound
 * to this round, session and pair, refuses an unmask request that contradicts the survivor set
 * it signed or lists someone as alive and dropped, and reveals one share per neighbour.
 */

/** Configuration of one client for one round (a client object serves exactly one round). */
export type SecAggClientConfig = {
  round: number;
  clientId: number;
  /** This client's Ed25519 identity secret key (64 bytes, tweetnacl layout). */
  identitySecretKey: Uint8Array;
  /** Ed25519 public keys of every client that may take part (the provisioned roster). */
  identities: ReadonlyMap<number, Uint8Array>;
  rng: RandomBytes;
  /** The encoded input in Z_(2^32) words (can also be given later with `setInput`). */
  input?: Uint32Array;
  /**
   * Fewest survivors this client lets a sum be unmasked with (default 1): it refuses to sign a
   * survivor set, or to send unmasking shares for an alive set, smaller than this. With
   * distributed DP this is the minSurvivors its noise share was calibrated for: a smaller sum
   * would carry less noise than accounted (#16 finding 8). The coordinator is not trusted to check it.
   */
  minSurvivors?: number;
  /**
   * The cohort and (k, t) this client checked in the round plan against its own minimums: a
   * config naming another cohort (say, a subset smaller than the client's minimum) or other
   * parameters is refused (check 'params'). k is compared as min(k, n - 1).
   */
  expected?: { cohort: readonly number[]; k: number; t: number };
};

/** What the client wants sent after handling a server message. */
export type ClientReply =
  | { kind: 'send'; stage: Stage; bytes: Uint8Array }
  | { kind: 'masked-input'; stage: 'collect'; masked: Uint32Array; chunks(chunkWords?: number): Generator<Uint8Array> }
  | { kind: 'finished' }
  | { kind: 'aborted'; check: string; reason: string };

type Secrets = { c: X25519KeyPair; s: X25519KeyPair; b: Uint8Array };
type HeldShares = Map<number, { sShare: Uint8Array; bShare: Uint8Array }>;
/** Per advertised neighbour: the box key (seals our shares, opens theirs) and our pairwise mask term. */
type PeerKeys = { boxKey: Uint8Array; mask: MaskTerm };

/** The client's stage; each carries exactly the state the next step needs. */
export type ClientStage =
  | { name: 'awaiting-config' }
  | { name: 'advertised'; cfg: RoundConfigMsg; neighbours: number[]; secrets: Secrets; bCommit: Uint8Array }
  | { name: 'shared'; cfg: RoundConfigMsg; session: Uint8Array; peers: Map<number, PeerKeys>; selfKey: Uint8Array }
  | { name: 'received'; cfg: RoundConfigMsg; session: Uint8Array; peers: Map<number, PeerKeys>; selfKey: Uint8Array; held: HeldShares }
  | { name: 'masked'; cfg: RoundConfigMsg; session: Uint8Array; held: HeldShares }
  | { name: 'signed'; cfg: RoundConfigMsg; session: Uint8Array; held: HeldShares; survivors: number[] }
  | { name: 'finished' }
  | { name: 'aborted'; error: SecAggError };

/** Default words per masked-input chunk message (256 KiB, well under gRPC's 4 MiB limit). */
export const DEFAULT_CHUNK_WORDS = 65_536;

/** One client's SecAgg+ state machine for one round. */
export class SecAggClient {
  private st: ClientStage = { name: 'awaiting-config' };
  private input: Uint32Array | undefined;
  /** This client's neighbours in the round's graph (fixed by the config; computed once). */
  private neighbourSet: ReadonlySet<number> = new Set();
  private readonly signer: (message: Uint8Array) => Uint8Array;

  constructor(private readonly cfg: SecAggClientConfig) {
    if (cfg.identitySecretKey.length !== 64) throw new RangeError(`SecAggClient: identitySecretKey must be 64 bytes, received ${cfg.identitySecretKey.length}`);
    if (!Number.isInteger(cfg.clientId) || cfg.clientId < 0 || cfg.clientId >= 2 ** 31) throw new RangeError(`SecAggClient: clientId must be an integer 0..2^31-1, received ${cfg.clientId}`);
    if (cfg.minSurvivors !== undefined && (!Number.isInteger(cfg.minSurvivors) || cfg.minSurvivors < 1)) throw new RangeError(`SecAggClient: minSurvivors must be an integer >= 1, received ${cfg.minSurvivors}`);
    this.input = cfg.input;
    this.signer = ed25519Signer(cfg.identitySecretKey);
  }

  /** The current stage name (for logs and tests). */
  get stage(): ClientStage['name'] {
    return this.st.name;
  }

  /** Provides the encoded input (must happen before the share delivery arrives). */
  setInput(words: Uint32Array): void {
    if (!(words instanceof Uint32Array)) throw new TypeError(`setInput: expected a Uint32Array, received ${typeof words}`);
    this.input = words;
  }

  /** Handles one server message; returns what to send, or throws SecAggError (and aborts) on any failed check. */
  handle(bytes: Uint8Array): ClientReply {
    const st = this.st;
    if (st.name === 'aborted') throw new SecAggError('aborted', `client ${this.cfg.clientId} already aborted round ${this.cfg.round} (${st.error.check})`);
    if (st.name === 'finished') throw new SecAggError('stage', `client ${this.cfg.clientId} finished round ${this.cfg.round}; no further messages expected`);
    try {
      const m = parseMessage(bytes) as ServerMsg;
      if (m.type === 'abort') {
        ensure(m.round === this.cfg.round, 'round', `abort for round ${m.round}, this is round ${this.cfg.round}`);
        this.wipe(new SecAggError('aborted', `server aborted the round (${m.check}): ${m.reason}`));
        return { kind: 'aborted', check: m.check, reason: m.reason };
      }
      ensure(m.round === this.cfg.round, 'round', `expected round ${this.cfg.round}, received round ${m.round}`);
      switch (st.name) {
        case 'awaiting-config':
          ensure(m.type === 'config', 'stage', `expect 'config' in stage awaiting-config, but received '${m.type}'`);
          return this.onConfig(m);
        case 'advertised':
          ensure(m.type === 'keys', 'stage', `expect 'keys' in stage advertised, but received '${m.type}'`);
          return this.onKeys(st, m.keys);
        case 'shared':
          ensure(m.type === 'shares', 'stage', `expect 'shares' in stage shared, but received '${m.type}'`);
          return this.onShares(st, m.session, m.shares);
        case 'received':
          ensure(m.type === 'peers', 'stage', `expect 'peers' in stage received, but received '${m.type}'`);
          return this.onPeers(st, m.session, m.peers);
        case 'masked':
          ensure(m.type === 'survivors', 'stage', `expect 'survivors' in stage masked, but received '${m.type}'`);
          return this.onSurvivors(st, m.session, m.survivors);
        case 'signed':
          ensure(m.type === 'unmask', 'stage', `expect 'unmask' in stage signed, but received '${m.type}'`);
          return this.onUnmask(st, m);
      }
    } catch (e) {
      if (e instanceof SecAggError) this.wipe(e);
      throw e;
    }
  }

  private onConfig(m: RoundConfigMsg): ClientReply {
    const me = this.cfg.clientId;
    ensure(m.cohort.includes(me), 'sender', `client ${me} is not in the round's cohort`);
    ensure(m.t <= m.k && m.k <= m.cohort.length - 1, 'params', `need t <= k <= n - 1, received t=${m.t}, k=${m.k}, n=${m.cohort.length}`);
    ensure(2 * m.t > m.k, 'params', `threshold t=${m.t} must exceed k/2=${m.k / 2} so a lying server cannot collect both shares of a client`);
    ensure(m.k >= m.cohort.length - 1 || m.k % 2 === 0, 'params', `k must be even below n - 1, received k=${m.k}`);
    const exp = this.cfg.expected;
    if (exp) {
      const want = [...exp.cohort].sort((a, b) => a - b).join(',');
      ensure([...m.cohort].sort((a, b) => a - b).join(',') === want, 'params', `the config's cohort is not the one in the round plan this client checked`);
      ensure(m.k === Math.min(exp.k, m.cohort.length - 1) && m.t === exp.t, 'params', `the config's (k=${m.k}, t=${m.t}) differ from the round plan's (k=${exp.k}, t=${exp.t}) this client checked`);
    }
    const unknown = m.cohort.filter((id) => !this.cfg.identities.has(id));
    ensure(unknown.length === 0, 'sender', `the cohort names client(s) ${unknown.join(', ')} without a roster identity key`);
    // The graph seed is derived from the cohort's keys and the round (Bell et al. assume a random placement the server does not choose).
    const seed = deriveGraphSeed(m.round, m.cohort.map((id) => [id, this.cfg.identities.get(id)!] as const));
    ensure(bytesEqual(m.graphSeed, seed), 'graph', `the config's graph seed is not the one derived from the cohort's identity keys and round ${m.round}`);
    const neighbours = hararyNeighboursOf(m.cohort, m.k, m.graphSeed, me);
    this.neighbourSet = new Set(neighbours);
    const secrets: Secrets = { c: generateX25519(this.cfg.rng), s: generateX25519(this.cfg.rng), b: this.cfg.rng(32) };
    const bCommit = commitSeed(secrets.b);
    const keys = { clientId: me, cPk: secrets.c.publicKey, sPk: secrets.s.publicKey, bCommit };
    const sig = this.signer(advertiseSigningBytes(m.round, keys));
    this.st = { name: 'advertised', cfg: m, neighbours, secrets, bCommit };
    return { kind: 'send', stage: 'advertise', bytes: encodeMessage({ type: 'advertise', round: m.round, sender: me, cPk: keys.cPk, sPk: keys.sPk, bCommit, sig }) };
  }

  private onKeys(st: Extract<ClientStage, { name: 'advertised' }>, list: SignedKeys[]): ClientReply {
    const me = this.cfg.clientId;
    const cohort = new Set(st.cfg.cohort);
    const neighbours = new Set(st.neighbours);
    const keys = new Map<number, SignedKeys>();
    const seenPks = new Set<string>();
    for (const k of list) {
      ensure(cohort.has(k.clientId), 'sender', `key list contains client ${k.clientId}, which is not in the cohort`);
      ensure(!keys.has(k.clientId), 'duplicate', `key list contains client ${k.clientId} twice`);
      const idPk = this.cfg.identities.get(k.clientId);
      ensure(idPk, 'sender', `no identity key for client ${k.clientId}`);
      // Only neighbours' keys are used for agreement and encryption, so only their signatures matter (O(k), not O(n)).
      if (neighbours.has(k.clientId)) {
        ensure(verify(advertiseSigningBytes(st.cfg.round, k), k.sig, idPk), 'signature', `advertisement of client ${k.clientId} is not signed by its identity key for round ${st.cfg.round}`);
      }
      for (const pk of [k.cPk, k.sPk]) {
        const h = Buffer.from(pk.buffer, pk.byteOffset, pk.length).toString('hex');
        ensure(!seenPks.has(h), 'duplicate', `a public key appears twice in the key list (client ${k.clientId})`);
        seenPks.add(h);
      }
      keys.set(k.clientId, k);
    }
    const mine = keys.get(me);
    ensure(
      mine && bytesEqual(mine.cPk, st.secrets.c.publicKey) && bytesEqual(mine.sPk, st.secrets.s.publicKey) && bytesEqual(mine.bCommit, st.bCommit),
      'consistency',
      `the key list does not contain client ${me}'s own advertisement unchanged`,
    );
    const holders = st.neighbours.filter((v) => keys.has(v));
    ensure(holders.length >= st.cfg.t, 'threshold', `only ${holders.length} neighbours advertised keys, threshold is ${st.cfg.t}`);
    const session = computeSessionId(st.cfg.round, [...keys.values()], digest(encodeMessage(st.cfg)));
    const xs = holders.map(shareX);
    const sShares = shamirSplit(st.secrets.s.secretKey, st.cfg.t, xs, this.cfg.rng);
    const bShares = shamirSplit(st.secrets.b, st.cfg.t, xs, this.cfg.rng);
    // All agreements happen here, once per neighbour: the box key (symmetric, reused to open the
    // neighbour's shares) and the pairwise mask key. Then both secret keys and the seed are wiped,
    // so from this point the client holds only derived, per-session keys.
    const agreeC = x25519Agreer(st.secrets.c.secretKey);
    const agreeS = x25519Agreer(st.secrets.s.secretKey);
    const peers = new Map<number, PeerKeys>();
    for (const v of holders) {
      const cs = agreeC(keys.get(v)!.cPk);
      const ss = agreeS(keys.get(v)!.sPk);
      peers.set(v, { boxKey: boxKeyFromShared(cs), mask: { key: pairMaskKey(ss, session, me, v), sign: pairSign(me, v) } });
      cs.fill(0);
      ss.fill(0);
    }
    const shares = holders.map((to, i) => {
      const plain = encodeSharePlaintext({ round: st.cfg.round, session, from: me, to, sShare: sShares[i]!.y, bShare: bShares[i]!.y });
      const ct = boxSeal(plain, peers.get(to)!.boxKey, this.cfg.rng);
      plain.fill(0);
      return { to, ct };
    });
    for (const s of [...sShares, ...bShares]) s.y.fill(0);
    const selfKey = selfMaskKey(st.secrets.b, session, me);
    wipeSecrets(st.secrets);
    this.st = { name: 'shared', cfg: st.cfg, session, peers, selfKey };
    return { kind: 'send', stage: 'share', bytes: encodeMessage({ type: 'share', round: st.cfg.round, session, sender: me, shares }) };
  }

  /**
   * Opens the shares addressed to this client. A share that does not open, or is bound to another
   * round, session or pair, is not an abort: its sender is reported in the receipt and the server
   * removes it from the round before anyone masks (this client then neither holds its shares nor
   * masks with it). Only too few valid shares (below t) end this client's round.
   */
  private onShares(st: Extract<ClientStage, { name: 'shared' }>, session: Uint8Array, shares: Array<{ from: number; ct: Uint8Array }>): ClientReply {
    const me = this.cfg.clientId;
    ensure(bytesEqual(session, st.session), 'session', `share delivery is bound to another session`);
    const held: HeldShares = new Map();
    const rejected = new Set<number>();
    for (const { from, ct } of shares) {
      const peer = st.peers.get(from);
      ensure(peer, 'sender', `share from client ${from}, which is not an advertised neighbour`);
      ensure(!held.has(from) && !rejected.has(from), 'duplicate', `two shares from client ${from}`);
      const p = openShare(ct, peer.boxKey);
      if (p && p.round === st.cfg.round && bytesEqual(p.session, session) && p.from === from && p.to === me) held.set(from, { sShare: p.sShare, bShare: p.bShare });
      else {
        if (p) wipeHeld(new Map([[from, p]]));
        rejected.add(from);
      }
    }
    ensure(held.size >= st.cfg.t, 'threshold', `only ${held.size} neighbours shared valid keys, threshold is ${st.cfg.t}`);
    this.st = { name: 'received', cfg: st.cfg, session, peers: st.peers, selfKey: st.selfKey, held };
    const list = [...rejected].sort((a, b) => a - b);
    return { kind: 'send', stage: 'receipt', bytes: encodeMessage({ type: 'receipt', round: st.cfg.round, session, sender: me, rejected: list }) };
  }

  /** Masks the input with the self mask and the pairwise masks of the held neighbours the server kept in the round. */
  private onPeers(st: Extract<ClientStage, { name: 'received' }>, session: Uint8Array, peerList: number[]): ClientReply {
    const me = this.cfg.clientId;
    ensure(bytesEqual(session, st.session), 'session', `peer list is bound to another session`);
    const kept = new Set(peerList);
    ensure(kept.has(me), 'consistency', `the peer list omits client ${me}, which sent its receipt`);
    const input = this.input;
    ensure(input && input.length === st.cfg.dim, 'params', `input must be ${st.cfg.dim} words before masking, received ${input?.length ?? 'none'}`);
    const held: HeldShares = new Map();
    for (const [v, sh] of st.held) {
      if (kept.has(v)) held.set(v, sh);
      else wipeHeld(new Map([[v, sh]]));
    }
    ensure(held.size >= st.cfg.t, 'threshold', `only ${held.size} neighbours remain in the round, threshold is ${st.cfg.t}`);
    const masked = input.slice();
    const terms: MaskTerm[] = [{ key: st.selfKey, sign: 1 }];
    for (const v of [...held.keys()].sort((a, b) => a - b)) terms.push(st.peers.get(v)!.mask);
    addMasks(masked, terms);
    wipePeers(st);
    this.input = undefined; // the raw input is no longer needed: drop the reference
    this.st = { name: 'masked', cfg: st.cfg, session, held };
    const { round } = st.cfg;
    return {
      kind: 'masked-input',
      stage: 'collect',
      masked,
      *chunks(chunkWords = DEFAULT_CHUNK_WORDS) {
        if (!Number.isInteger(chunkWords) || chunkWords < 1) throw new RangeError(`chunks: chunkWords must be a positive integer, received ${chunkWords}`);
        for (let offset = 0; offset < masked.length; offset += chunkWords) {
          yield encodeMessage({ type: 'chunk', round, session, sender: me, offset, words: masked.subarray(offset, offset + chunkWords) });
        }
      },
    };
  }

  private onSurvivors(st: Extract<ClientStage, { name: 'masked' }>, session: Uint8Array, survivors: number[]): ClientReply {
    const me = this.cfg.clientId;
    ensure(bytesEqual(session, st.session), 'session', `survivor list is bound to another session`);
    const cohort = new Set(st.cfg.cohort);
    ensure(survivors.every((u) => cohort.has(u)), 'sender', `survivor list names clients outside the cohort`);
    ensure(survivors.includes(me), 'consistency', `survivor list omits client ${me}, which uploaded its input`);
    const min = this.cfg.minSurvivors ?? 1;
    ensure(survivors.length >= min, 'threshold', `the survivor set has ${survivors.length} clients; client ${me} unmasks no sum of fewer than ${min} inputs`);
    const aliveHolders = survivors.filter((u) => st.held.has(u)).length;
    ensure(aliveHolders >= st.cfg.t, 'threshold', `only ${aliveHolders} of client ${me}'s neighbours survived, threshold is ${st.cfg.t}`);
    const sig = this.signer(consistencySigningBytes(st.cfg.round, session, survivors));
    this.st = { name: 'signed', cfg: st.cfg, session, held: st.held, survivors };
    return { kind: 'send', stage: 'consistency', bytes: encodeMessage({ type: 'consistency', round: st.cfg.round, session, sender: me, sig }) };
  }

  private onUnmask(st: Extract<ClientStage, { name: 'signed' }>, m: Extract<ServerMsg, { type: 'unmask' }>): ClientReply {
    const me = this.cfg.clientId;
    ensure(bytesEqual(m.session, st.session), 'session', `unmask request is bound to another session`);
    const dropped = new Set(m.dropped);
    const both = m.alive.filter((u) => dropped.has(u));
    ensure(both.length === 0, 'alive-and-dropped', `unmask request lists client(s) ${both.join(', ')} as both alive and dropped`);
    const min = this.cfg.minSurvivors ?? 1;
    ensure(m.alive.length >= min, 'threshold', `the unmask request names ${m.alive.length} survivors; client ${me} sends no unmasking shares for fewer than ${min}`);
    ensure(m.alive.length === st.survivors.length && m.alive.every((u, i) => u === st.survivors[i]), 'consistency', `alive set differs from the survivor set this client signed`);
    const signedBy = new Set<number>();
    const alive = new Set(m.alive);
    // One message for every signature: the survivor set this client signed (checked equal to m.alive above).
    const signed = consistencySigningBytes(st.cfg.round, st.session, st.survivors);
    for (const { clientId, sig } of m.signatures) {
      ensure(alive.has(clientId), 'consistency', `signature from client ${clientId}, which is not a survivor`);
      ensure(this.neighbourSet.has(clientId), 'graph', `signature from client ${clientId}, which is not a neighbour`);
      ensure(!signedBy.has(clientId), 'duplicate', `two consistency signatures from client ${clientId}`);
      const idPk = this.cfg.identities.get(clientId);
      ensure(idPk && verify(signed, sig, idPk), 'signature', `consistency signature of client ${clientId} does not verify on the survivor set`);
      signedBy.add(clientId);
    }
    ensure(signedBy.size >= st.cfg.t, 'consistency', `only ${signedBy.size} neighbours confirmed the survivor set, threshold is ${st.cfg.t}`);
    const bShares: Array<{ of: number; y: Uint8Array }> = [];
    const sShares: Array<{ of: number; y: Uint8Array }> = [];
    for (const [u, sh] of [...st.held.entries()].sort((a, b) => a[0] - b[0])) {
      if (alive.has(u)) bShares.push({ of: u, y: sh.bShare });
      else if (dropped.has(u)) sShares.push({ of: u, y: sh.sShare });
    }
    const bytes = encodeMessage({ type: 'unmask-shares', round: st.cfg.round, session: st.session, sender: me, bShares, sShares });
    wipeHeld(st.held);
    this.st = { name: 'finished' };
    return { kind: 'send', stage: 'unmask', bytes };
  }

  private wipe(error: SecAggError): void {
    const st = this.st;
    if (st.name === 'advertised') wipeSecrets(st.secrets);
    if (st.name === 'shared') wipePeers(st);
    if (st.name === 'received') {
      wipePeers(st);
      wipeHeld(st.held);
    }
    if (st.name === 'masked' || st.name === 'signed') wipeHeld(st.held);
    this.st = { name: 'aborted', error };
  }
}

/** The decrypted share plaintext, or undefined when the ciphertext does not open or decode. */
function openShare(ct: Uint8Array, boxKey: Uint8Array): ReturnType<typeof decodeSharePlaintext> | undefined {
  try {
    return decodeSharePlaintext(boxOpen(ct, boxKey));
  } catch (e) {
    if (e instanceof SecAggError) return undefined;
    throw e;
  }
}

function wipePeers(st: { peers: Map<number, PeerKeys>; selfKey: Uint8Array }): void {
  st.selfKey.fill(0);
  for (const p of st.peers.values()) {
    p.boxKey.fill(0);
    p.mask.key.fill(0);
  }
}

function wipeHeld(held: ReadonlyMap<number, { sShare: Uint8Array; bShare: Uint8Array }>): void {
  for (const sh of held.values()) {
    sh.sShare.fill(0);
    sh.bShare.fill(0);
  }
}

function wipeSecrets(s: Secrets): void {
  s.c.secretKey.fill(0);
  s.s.secretKey.fill(0);
  s.b.fill(0);
}

/** Fresh Ed25519 identity from `rng` (tests and provisioning helpers). */
export function generateIdentity(rng: RandomBytes): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const seed = rng(32);
  const publicKey = ed25519PublicKey(seed);
  // tweetnacl's layout (seed || public key), which every signer here takes.
  const secretKey = new Uint8Array(64);
  secretKey.set(seed);
  secretKey.set(publicKey, 32);
  seed.fill(0);
  return { publicKey, secretKey };
}
