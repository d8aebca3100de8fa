import type { RandomBytes } from '@fedlora/tensor';
import { SecAggError, ensure } from './errors.js';
import { deriveGraphSeed } from './graph-seed.js';
import { hararyNeighbours, type Neighbourhoods } from './harary-graph.js';
import { advertiseSigningBytes, bytesEqual, computeSessionId, consistencySigningBytes, digest, verify } from './key-agreement.js';
import { addMasks } from './mask-prg.js';
import { resolveRejections } from './receipt-conflicts.js';
import { ReconstructionError, unmaskTerms } from './unmask.js';
import {
  CLIENT_MSG_STAGE,
  encodeMessage,
  parseMessage,
  type ClientMsg,
  type ReceiptMsg,
  type ShareKeysMsg,
  type SignedKeys,
  type Stage,
  type UnmaskSharesMsg,
} from './messages.js';

/**
 * The server (coordinator) side of SecAgg+ as an explicit state machine. The caller drives it:
 * `handle(from, stage, bytes)` accepts one client message (every message is checked against
 * the current stage, round, session and sender; failures throw SecAggError naming the check and
 * leave the round untouched), `poll(from)` says what that client should receive next, and
 * `advance()` closes the current stage, typically at a deadline the caller keeps (no timers or
 * clocks inside). Masked inputs arrive in chunks and are added into one running sum, so server
 * memory is O(d) whatever the cohort size. When survivors fall below what reconstruction needs
 * the round aborts with check 'threshold' and `result()` releases nothing.
 */

/** Configuration of the server for one round. */
export type SecAggServerConfig = {
  round: number;
  /** Client ids selected for the round. */
  cohort: readonly number[];
  /** Ed25519 public keys of the roster (at least every cohort member). */
  identities: ReadonlyMap<number, Uint8Array>;
  /** Neighbours per client (k >= n - 1: full SecAgg) and Shamir threshold, e.g. from chooseSecAggParams. */
  k: number;
  t: number;
  /** Words of each (encoded) input vector. */
  dim: number;
  rng: RandomBytes;
  /**
   * How many uploads may be staged at once (default 0). With 0, chunks go straight into the
   * running sum (memory O(d) for any n), and a client that stops mid-upload aborts the round,
   * because its partial masked input cannot be removed from the sum. With m > 0, each upload is
   * staged in its own O(d) buffer and added to the sum only once complete, so a client may vanish
   * mid-upload and simply counts as dropped; memory is O(d (1 + m)), still independent of n.
   * A chunk that would open an (m+1)-th staged upload is refused with check 'chunk' ("busy") and
   * the transport retries it later.
   */
  stagedUploads?: number;
  /**
   * Fewest survivors a sum may be unmasked with (default 1): below it collection aborts with check
   * 'threshold' before any unmasking share is requested (#16 finding 8: with distributed DP each
   * input carries 1/minSurvivors of the noise variance, so a smaller sum is under-noised).
   */
  minSurvivors?: number;
  /**
   * Hex of every X25519 public key used in earlier rounds; advertisements reusing one are refused,
   * and this round's are added. A Set, or a registry backed by the coordinator's store so that a
   * restart does not forget them.
   */
  usedKeys?: UsedKeyRegistry;
};

/** Where used X25519 keys are remembered (a Set<string> is one). */
export type UsedKeyRegistry = { has(publicKeyHex: string): boolean; add(publicKeyHex: string): unknown };

/** What a client should get next. */
export type ServerReply =
  | { kind: 'message'; stage: Stage; bytes: Uint8Array }
  | { kind: 'wait' }
  | { kind: 'excluded' }
  | { kind: 'finished' }
  | { kind: 'aborted'; bytes: Uint8Array };

/** The server's stage. */
export type ServerStage = { name: Stage } | { name: 'finished' } | { name: 'aborted'; error: SecAggError };

/** Output of a finished round: the sum (mod 2^32) of the survivors' inputs, and who they are. */
export type SecAggResult = { sum: Uint32Array; survivors: number[] };

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

/** sum[offset + i] += words[i] (mod 2^32), in 32-bit integer arithmetic. */
function addInto(sum: Uint32Array, offset: number, words: Uint32Array): void {
  const acc = new Int32Array(sum.buffer, sum.byteOffset + 4 * offset, words.length);
  const w = new Int32Array(words.buffer, words.byteOffset, words.length);
  for (let i = 0; i < w.length; i++) acc[i] = (acc[i]! + w[i]!) | 0;
}

/** The coordinator's SecAgg+ state machine for one round. */
export class SecAggServer {
  private st: ServerStage = { name: 'advertise' };
  private readonly graph: Neighbourhoods;
  private readonly cohort: Set<number>;
  private readonly graphSeed: Uint8Array;
  private readonly configBytes: Uint8Array;
  private readonly adverts = new Map<number, SignedKeys>();
  private readonly advertPks = new Set<string>();
  private session: Uint8Array = new Uint8Array(32);
  private readonly shareMsgs = new Map<number, ShareKeysMsg>();
  private readonly receipts = new Map<number, number[]>();
  /** Who misbehaved in this round and how (the caller leaves them out of reruns). */
  private readonly blamed = new Map<number, string>();
  private readonly received = new Map<number, number>();
  private sum: Uint32Array | undefined;
  private readonly staging = new Map<number, Uint32Array>();
  private readonly consistencySigs = new Map<number, Uint8Array>();
  private readonly unmaskMsgs = new Map<number, UnmaskSharesMsg>();
  private u1: number[] = [];
  private u2: number[] = [];
  /** Clients whose inputs may enter the sum: sent a receipt and no one rejected their shares (U2 of Bonawitz et al. from here on). */
  private uc: number[] = [];
  private u3: number[] = [];
  private u4: number[] = [];
  /** Who may answer in the current stage (the set behind the stage's list above), for O(1) checks per message. */
  private eligible: Set<number>;
  /** Eligible clients that have answered in the current stage (completed upload in collect). */
  private answered = 0;
  /** Set forms of u3 (alive) and uc, fixed once collection closes. */
  private aliveSet = new Set<number>();
  private ucSet = new Set<number>();
  /** The survivor set's signing bytes (consistencySigningBytes of u3), fixed once collection closes. */
  private consistencyBytes: Uint8Array | undefined;
  private stageMessages = new Map<number, Uint8Array>();
  private broadcast: Uint8Array | undefined;
  private output: SecAggResult | undefined;

  constructor(private readonly cfg: SecAggServerConfig) {
    const n = cfg.cohort.length;
    if (n < 2) throw new RangeError(`SecAggServer: cohort needs at least 2 clients, received ${n}`);
    if (!Number.isInteger(cfg.t) || cfg.t < 1 || cfg.t > Math.min(cfg.k, n - 1)) throw new RangeError(`SecAggServer: need 1 <= t <= min(k, n - 1), received t=${cfg.t}, k=${cfg.k}, n=${n}`);
    if (2 * cfg.t <= Math.min(cfg.k, n - 1)) throw new RangeError(`SecAggServer: t=${cfg.t} must exceed k/2 (clients refuse otherwise)`);
    if (!Number.isInteger(cfg.dim) || cfg.dim < 1 || cfg.dim > 2 ** 30) throw new RangeError(`SecAggServer: dim must be an integer 1..2^30, received ${cfg.dim}`);
    for (const id of cfg.cohort) if (!cfg.identities.has(id)) throw new RangeError(`SecAggServer: no identity key for cohort member ${id}`);
    this.cohort = new Set(cfg.cohort);
    this.eligible = this.cohort;
    // Derived from the cohort's keys and the round, never drawn: clients recompute and check it.
    this.graphSeed = deriveGraphSeed(cfg.round, cfg.cohort.map((id) => [id, cfg.identities.get(id)!] as const));
    const k = Math.min(cfg.k, n - 1);
    this.graph = hararyNeighbours(cfg.cohort, k, this.graphSeed);
    this.configBytes = encodeMessage({ type: 'config', round: cfg.round, cohort: sorted(cfg.cohort), k, t: cfg.t, dim: cfg.dim, graphSeed: this.graphSeed });
    this.broadcast = this.configBytes;
  }

  /** The current stage. */
  get stage(): ServerStage['name'] {
    return this.st.name;
  }

  /** The public round plan, for the ledger: threshold, neighbourhood size, graph seed and (once keys are in) the session id. */
  plan(): { round: number; k: number; t: number; dim: number; cohort: number[]; graphSeedHex: string; sessionIdHex: string | undefined } {
    return {
      round: this.cfg.round,
      k: Math.min(this.cfg.k, this.cfg.cohort.length - 1),
      t: this.cfg.t,
      dim: this.cfg.dim,
      cohort: sorted(this.cfg.cohort),
      graphSeedHex: Buffer.from(this.graphSeed).toString('hex'),
      sessionIdHex: this.u1.length > 0 ? Buffer.from(this.session).toString('hex') : undefined,
    };
  }

  /** Neighbours of a client in this round's graph. */
  neighbours(clientId: number): readonly number[] {
    return this.graph.get(clientId) ?? [];
  }

  /** Clients expected to answer in the current stage that have not yet (the caller's deadline decides how long to wait). */
  pending(): number[] {
    const st = this.st.name;
    if (st === 'finished' || st === 'aborted') return [];
    return sorted(this.eligible).filter((u) => this.isPending(u));
  }

  /** How many clients `pending()` would list, in O(1) (callers check it on every message). */
  pendingCount(): number {
    const st = this.st.name;
    return st === 'finished' || st === 'aborted' ? 0 : this.eligible.size - this.answered;
  }

  /** Whether eligible client `u` still owes its message for the current stage. */
  private isPending(u: number): boolean {
    switch (this.st.name) {
      case 'advertise':
        return !this.adverts.has(u);
      case 'share':
        return !this.shareMsgs.has(u);
      case 'receipt':
        return !this.receipts.has(u);
      case 'collect':
        return this.received.get(u) !== this.cfg.dim;
      case 'consistency':
        return !this.consistencySigs.has(u);
      case 'unmask':
        return !this.unmaskMsgs.has(u);
      default:
        return false;
    }
  }

  /** Enters `stage`, where the clients in `eligible` are expected to answer. */
  private enter(stage: Stage, eligible: readonly number[]): void {
    this.eligible = new Set(eligible);
    this.answered = 0;
    this.st = { name: stage };
  }

  /** Words of client `clientId`'s masked input received so far in the collect stage. */
  uploadedWords(clientId: number): number {
    return this.received.get(clientId) ?? 0;
  }

  /** What client `from` should receive now. */
  poll(from: number): ServerReply {
    const st = this.st;
    if (st.name === 'aborted') return { kind: 'aborted', bytes: this.abortBytes(st.error) };
    if (st.name === 'finished') return { kind: 'finished' };
    if (!this.eligible.has(from)) return { kind: 'excluded' };
    if (!this.isPending(from) || (st.name === 'collect' && (this.received.get(from) ?? 0) > 0)) return { kind: 'wait' };
    const bytes = this.broadcast ?? this.stageMessages.get(from)!;
    return { kind: 'message', stage: st.name, bytes };
  }

  /** Accepts one client message for `stage`; throws SecAggError naming the failed check. Returns `poll(from)`. */
  handle(from: number, stage: string, bytes: Uint8Array): ServerReply {
    const st = this.st;
    if (st.name === 'aborted') throw new SecAggError('aborted', `round ${this.cfg.round} was aborted (${st.error.check})`);
    ensure(st.name !== 'finished', 'stage', `round ${this.cfg.round} is finished; expect no messages, but received one for stage ${stage}`);
    ensure(stage === st.name, 'stage', `expect ${st.name} stage, but receive ${stage} stage`);
    const m = parseMessage(bytes) as ClientMsg;
    ensure(m.type in CLIENT_MSG_STAGE, 'format', `client ${from} sent a server message type '${m.type}'`);
    ensure(CLIENT_MSG_STAGE[m.type] === st.name, 'stage', `expect ${st.name} stage, but receive a '${m.type}' message`);
    ensure(m.sender === from, 'sender', `message from client ${from} claims sender ${m.sender}`);
    ensure(m.round === this.cfg.round, 'round', `expected round ${this.cfg.round}, received round ${m.round}`);
    if (m.type !== 'advertise') ensure(bytesEqual(m.session, this.session), 'session', `message from client ${from} is bound to another session`);
    switch (m.type) {
      case 'advertise':
        this.onAdvertise(m);
        break;
      case 'share':
        this.onShare(m);
        break;
      case 'receipt':
        this.onReceipt(m);
        break;
      case 'chunk':
        this.addMaskedChunk(from, m.offset, m.words);
        break;
      case 'consistency':
        this.onConsistency(m.sender, m.sig);
        break;
      case 'unmask-shares':
        this.onUnmaskShares(m);
        break;
    }
    return this.poll(from);
  }

  /** Adds a slice of client `clientId`'s masked input into the running sum (chunks must arrive in order). */
  addMaskedChunk(clientId: number, offset: number, words: Uint32Array): void {
    ensure(this.st.name === 'collect', 'stage', `expect collect stage, but receive a masked chunk in stage ${this.st.name}`);
    ensure(this.eligible.has(clientId), 'sender', `client ${clientId} is not among the clients kept after the share receipts and cannot upload an input`);
    const done = this.received.get(clientId) ?? 0;
    ensure(offset === done, 'chunk', `client ${clientId}'s chunk starts at ${offset}, expected ${done}`);
    ensure(words.length > 0 && offset + words.length <= this.cfg.dim, 'chunk', `client ${clientId}'s chunk [${offset}, ${offset + words.length}) exceeds dim ${this.cfg.dim}`);
    const slots = this.cfg.stagedUploads ?? 0;
    if (slots === 0) {
      addInto(this.sum!, offset, words);
    } else {
      let buf = this.staging.get(clientId);
      if (!buf) {
        ensure(this.staging.size < slots, 'chunk', `busy: ${slots} uploads are already staged; retry client ${clientId}'s chunk later`);
        buf = new Uint32Array(this.cfg.dim);
        this.staging.set(clientId, buf);
      }
      buf.set(words, offset);
      if (offset + words.length === this.cfg.dim) {
        addInto(this.sum!, 0, buf);
        buf.fill(0);
        this.staging.delete(clientId);
      }
    }
    this.received.set(clientId, offset + words.length);
    if (offset + words.length === this.cfg.dim) this.answered++;
  }

  private onAdvertise(m: Extract<ClientMsg, { type: 'advertise' }>): void {
    ensure(this.cohort.has(m.sender), 'sender', `client ${m.sender} is not in the cohort`);
    ensure(!this.adverts.has(m.sender), 'duplicate', `client ${m.sender} already advertised keys`);
    ensure(verify(advertiseSigningBytes(m.round, { clientId: m.sender, cPk: m.cPk, sPk: m.sPk, bCommit: m.bCommit }), m.sig, this.cfg.identities.get(m.sender)!), 'signature', `advertisement of client ${m.sender} is not signed by its identity key for round ${m.round}`);
    const pks = [m.cPk, m.sPk].map((pk) => Buffer.from(pk).toString('hex'));
    ensure(pks[0] !== pks[1], 'duplicate', `client ${m.sender} advertised the same key twice`);
    for (const pk of pks) {
      ensure(!this.cfg.usedKeys?.has(pk), 'key-reuse', `client ${m.sender} advertised a public key used in an earlier round`);
      ensure(!this.advertPks.has(pk), 'duplicate', `client ${m.sender} advertised a public key another client uses`);
    }
    pks.forEach((pk) => this.advertPks.add(pk));
    this.adverts.set(m.sender, { clientId: m.sender, cPk: m.cPk, sPk: m.sPk, bCommit: m.bCommit, sig: m.sig });
    this.answered++;
  }

  private onShare(m: ShareKeysMsg): void {
    ensure(this.eligible.has(m.sender), 'sender', `client ${m.sender} did not advertise keys`);
    ensure(!this.shareMsgs.has(m.sender), 'duplicate', `client ${m.sender} already shared keys`);
    const expected = this.graph.get(m.sender)!.filter((v) => this.adverts.has(v));
    const tos = m.shares.map((s) => s.to);
    ensure(tos.length === expected.length && tos.every((v, i) => v === expected[i]), 'graph', `client ${m.sender} must send one share to each advertised neighbour in ascending order (${expected.length}), received ${tos.length}`);
    this.shareMsgs.set(m.sender, m);
    this.answered++;
  }

  private onReceipt(m: ReceiptMsg): void {
    ensure(this.eligible.has(m.sender), 'sender', `client ${m.sender} did not share keys`);
    ensure(!this.receipts.has(m.sender), 'duplicate', `client ${m.sender} already sent its receipt`);
    const senders = new Set(this.graph.get(m.sender)!.filter((v) => this.shareMsgs.has(v)));
    const bad = m.rejected.filter((v) => !senders.has(v));
    ensure(bad.length === 0, 'graph', `client ${m.sender} rejected shares of client(s) ${bad.join(', ')}, which sent it none`);
    this.receipts.set(m.sender, m.rejected);
    this.answered++;
  }

  private onConsistency(sender: number, sig: Uint8Array): void {
    ensure(this.eligible.has(sender), 'sender', `client ${sender} is not a survivor`);
    ensure(!this.consistencySigs.has(sender), 'duplicate', `client ${sender} already signed the survivor set`);
    ensure(verify(this.consistencyBytes!, sig, this.cfg.identities.get(sender)!), 'signature', `consistency signature of client ${sender} does not verify`);
    this.consistencySigs.set(sender, sig);
    this.answered++;
  }

  private onUnmaskShares(m: UnmaskSharesMsg): void {
    ensure(this.eligible.has(m.sender), 'sender', `client ${m.sender} did not sign the survivor set`);
    ensure(!this.unmaskMsgs.has(m.sender), 'duplicate', `client ${m.sender} already sent unmask shares`);
    const alive = this.aliveSet;
    const inRound = this.ucSet;
    const sharedWithSender = new Set(this.graph.get(m.sender)!.filter((u) => inRound.has(u)));
    const seen = new Set<number>();
    for (const { of } of m.bShares) {
      ensure(sharedWithSender.has(of) && alive.has(of), 'alive-and-dropped', `client ${m.sender} sent a self-mask share of client ${of}, which is not an alive neighbour`);
      ensure(!seen.has(of), 'duplicate', `client ${m.sender} sent two shares of client ${of}`);
      seen.add(of);
    }
    for (const { of } of m.sShares) {
      ensure(sharedWithSender.has(of) && !alive.has(of), 'alive-and-dropped', `client ${m.sender} sent a key share of client ${of}, which is not a dropped neighbour`);
      ensure(!seen.has(of), 'duplicate', `client ${m.sender} sent two shares of client ${of}`);
      seen.add(of);
    }
    this.unmaskMsgs.set(m.sender, m);
    this.answered++;
  }

  /** Closes the current stage and prepares the next (or aborts with check 'threshold'); returns the new stage. */
  advance(): ServerStage['name'] {
    const st = this.st;
    if (st.name === 'aborted' || st.name === 'finished') return st.name;
    try {
      switch (st.name) {
        case 'advertise':
          this.closeAdvertise();
          break;
        case 'share':
          this.closeShare();
          break;
        case 'receipt':
          this.closeReceipt();
          break;
        case 'collect':
          this.closeCollect();
          break;
        case 'consistency':
          this.closeConsistency();
          break;
        case 'unmask':
          this.closeUnmask();
          break;
      }
    } catch (e) {
      if (!(e instanceof SecAggError)) throw e;
      this.abort(e.check, e.message);
      this.st = { name: 'aborted', error: e };
    }
    return this.st.name;
  }

  /** Aborts the round (e.g. the caller's overall deadline passed); nothing is released afterwards. */
  abort(check: SecAggError['check'], reason: string): void {
    this.sum?.fill(0);
    this.sum = undefined;
    this.output = undefined;
    this.st = { name: 'aborted', error: check === 'aborted' ? new SecAggError('aborted', reason) : new SecAggError(check, reason) };
  }

  /** Why the round aborted, if it did. */
  get error(): SecAggError | undefined {
    return this.st.name === 'aborted' ? this.st.error : undefined;
  }

  /**
   * Clients that misbehaved in this round, with what they did (no secrets): a sender whose share
   * ciphertexts its neighbours could not open (naming them: a lying receiver can frame a sender, so
   * both names are kept), an upload that stopped part-way, a revealed share inconsistent with the
   * commitment its secret reconstructs to. The round went on without them; callers leave them out
   * of reruns and show them to the operator.
   */
  misbehaved(): ReadonlyMap<number, string> {
    return this.blamed;
  }

  /** The unmasked sum and the survivors; throws SecAggError('aborted' | 'stage') unless the round finished. */
  result(): SecAggResult {
    const st = this.st;
    if (st.name === 'aborted') throw new SecAggError('aborted', `round ${this.cfg.round} aborted (${st.error.check}): nothing is released`);
    ensure(st.name === 'finished' && this.output, 'stage', `round ${this.cfg.round} is in stage ${st.name}, not finished`);
    return this.output;
  }

  /** Needs >= t of u's share holders among `holders` for every u in `who` (holders of u's shares: its neighbours kept in the round). */
  private requireHolders(who: readonly number[], holders: ReadonlySet<number>, what: string): void {
    const inRound = new Set(this.uc);
    for (const u of who) {
      const alive = this.graph.get(u)!.filter((v) => holders.has(v) && inRound.has(v)).length;
      ensure(alive >= this.cfg.t, 'threshold', `client ${u} has ${alive} ${what} neighbours holding its shares, threshold is ${this.cfg.t}`);
    }
  }

  private closeAdvertise(): void {
    this.u1 = sorted(this.adverts.keys());
    const viable = this.u1.filter((u) => this.graph.get(u)!.filter((v) => this.adverts.has(v)).length >= this.cfg.t);
    ensure(viable.length >= this.cfg.t, 'threshold', `${viable.length} clients can share keys (need >= ${this.cfg.t})`);
    for (const pk of this.advertPks) this.cfg.usedKeys?.add(pk);
    this.session = computeSessionId(this.cfg.round, [...this.adverts.values()], digest(this.configBytes));
    this.broadcast = encodeMessage({ type: 'keys', round: this.cfg.round, keys: this.u1.map((u) => this.adverts.get(u)!) });
    this.enter('share', this.u1);
  }

  private closeShare(): void {
    this.u2 = sorted(this.shareMsgs.keys());
    ensure(this.u2.length >= this.cfg.t, 'threshold', `${this.u2.length} clients shared keys (need >= ${this.cfg.t})`);
    this.broadcast = undefined;
    this.stageMessages = new Map();
    const inbox = new Map<number, Array<{ from: number; ct: Uint8Array }>>(this.u2.map((v) => [v, []]));
    for (const u of this.u2) for (const s of this.shareMsgs.get(u)!.shares) inbox.get(s.to)?.push({ from: u, ct: s.ct });
    for (const v of this.u2) this.stageMessages.set(v, encodeMessage({ type: 'shares', round: this.cfg.round, session: this.session, shares: inbox.get(v)! }));
    this.enter('receipt', this.u2);
  }

  /**
   * Keeps the clients that sent a receipt, minus those removed so that no rejected share stands
   * between two kept clients (resolveRejections). A removed client is out of the round before anyone
   * masks (no one masks with it, its input is refused), exactly as if it had never shared keys, so
   * invalid ciphertexts, or false reports of them, cost the others nothing.
   */
  private closeReceipt(): void {
    const removed = resolveRejections(this.receipts);
    for (const [x, why] of removed) this.blamed.set(x, why);
    this.uc = sorted(this.receipts.keys()).filter((u) => !removed.has(u));
    ensure(this.uc.length >= this.cfg.t, 'threshold', `${this.uc.length} clients remain after the share receipts (need >= ${this.cfg.t})`);
    this.stageMessages = new Map();
    this.broadcast = encodeMessage({ type: 'peers', round: this.cfg.round, session: this.session, peers: this.uc });
    this.sum = new Uint32Array(this.cfg.dim);
    this.ucSet = new Set(this.uc);
    this.enter('collect', this.uc);

  }

  private closeCollect(): void {
    const partial = this.uc.filter((u) => {
      const r = this.received.get(u) ?? 0;
      return r > 0 && r < this.cfg.dim;
    });
    // Staged partial uploads are discarded (those clients count as dropped); direct ones cannot be.
    for (const buf of this.staging.values()) buf.fill(0);
    this.staging.clear();
    ensure(
      partial.length === 0 || (this.cfg.stagedUploads ?? 0) > 0,
      'chunk',
      `client(s) ${partial.join(', ')} stopped mid-upload; their partial inputs are in the running sum and cannot be removed (set stagedUploads to tolerate this)`,
    );
    for (const u of partial) this.blamed.set(u, `stopped mid-upload (${this.received.get(u)} of ${this.cfg.dim} words); counted as dropped`);
    this.u3 = this.uc.filter((u) => this.received.get(u) === this.cfg.dim);
    const need = Math.max(this.cfg.t, this.cfg.minSurvivors ?? 1);
    ensure(this.u3.length >= need, 'threshold', `${this.u3.length} clients uploaded inputs (need >= ${need})`);
    this.requireHolders(this.uc, new Set(this.u3), 'surviving');
    this.stageMessages = new Map();
    this.broadcast = encodeMessage({ type: 'survivors', round: this.cfg.round, session: this.session, survivors: this.u3 });
    this.aliveSet = new Set(this.u3);
    this.consistencyBytes = consistencySigningBytes(this.cfg.round, this.session, this.u3);
    this.enter('consistency', this.u3);
  }

  private closeConsistency(): void {
    this.u4 = sorted(this.consistencySigs.keys());
    this.requireHolders(this.uc, new Set(this.u4), 'confirming');
    const dropped = this.uc.filter((u) => !this.aliveSet.has(u));
    this.broadcast = undefined;
    this.stageMessages = new Map();
    for (const v of this.u4) {
      const signatures = this.graph.get(v)!.filter((u) => this.consistencySigs.has(u)).map((u) => ({ clientId: u, sig: this.consistencySigs.get(u)! }));
      this.stageMessages.set(v, encodeMessage({ type: 'unmask', round: this.cfg.round, session: this.session, alive: this.u3, dropped, signatures }));
    }
    this.enter('unmask', this.u4);
  }

  private closeUnmask(): void {
    const alive = new Set(this.u3);
    let unmasked: ReturnType<typeof unmaskTerms>;
    try {
      unmasked = unmaskTerms({
        t: this.cfg.t,
        session: this.session,
        graph: this.graph,
        adverts: this.adverts,
        survivors: this.u3,
        dropped: this.uc.filter((x) => !alive.has(x)),
        responses: this.unmaskMsgs.values(),
      });
    } catch (e) {
      if (e instanceof ReconstructionError) this.blamed.set(e.of, 'no subset of its revealed shares reconstructs the secret it committed to: it dealt inconsistent shares (or most revealers lied)');
      throw e;
    }
    for (const { revealer, of } of unmasked.badShares) {
      this.blamed.set(revealer, `revealed a share of client ${of} inconsistent with client ${of}'s commitment (client ${revealer} or client ${of} lied)`);
    }
    const sum = this.sum!;
    addMasks(sum, unmasked.terms);
    for (const t of unmasked.terms) t.key.fill(0);
    for (const m of this.unmaskMsgs.values()) for (const sh of [...m.bShares, ...m.sShares]) sh.y.fill(0);
    this.output = { sum, survivors: [...this.u3] };
    this.st = { name: 'finished' };
  }

  private abortBytes(error: SecAggError): Uint8Array {
    return encodeMessage({ type: 'abort', round: this.cfg.round, check: error.check, reason: error.message });
  }
}
