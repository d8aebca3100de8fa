import type { EncodingParams, Stage, UsedKeyRegistry } from '@fedlora/secagg';
import { SecAggError, SecAggServer, chooseEncodingParams, chooseSecAggParams, decodeAverage } from '@fedlora/secagg';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import type { RoundEvaluation } from './round-evaluation.js';
import { SECURE_EVAL_WORD_COUNT, decodeEvalSums, secureEvalScale } from './secure-evaluation.js';
import type { SecAggReply, SecureRoundPlan, TensorLayout } from './types.js';

/** Settings of secure aggregation for a federation. */
export interface SecureAggregationOptions {
  /** Ed25519 public key of an enrolled client (its secagg identity); undefined: cannot take part. */
  identityOf(clientName: string): Uint8Array | undefined;
  /** L2 clip of every update before encoding. */
  clipNorm: number;
  /** Per-client noise std in update units (distributed DP), 0 without DP. */
  noiseStddevPerClient?: number;
  /** Tolerated fraction of clients that drop out (Bell et al. 2020 parameter choice). */
  dropoutFraction?: number;
  /** Tolerated fraction of corrupt clients. */
  corruptFraction?: number;
  /**
   * Deadline of each stage other than masked-input collection: collection includes local
   * training, which only the round deadline (and the liveness window below) bounds.
   */
  stageTimeoutMs: number;
  /**
   * Deadline of the first stage (advertise), default stageTimeoutMs. It also covers the cohort's
   * arrival (a simulation builds each drawn institution, a device checks in when it can), which
   * can take far longer than a later stage's protocol work: a long first stage need not make every
   * stage that waits for a vanished client as long.
   */
  advertiseTimeoutMs?: number;
  /**
   * A client still owed its masked input (it is training) has vanished once silent this long:
   * no heartbeat (trainers send one between steps) and no protocol message. When every such
   * client has vanished, collection ends before the round deadline. Default max(30 s, 3 stage timeouts).
   */
  livenessMs?: number;
  /** Overrides of the chosen neighbourhood size and threshold (t is raised to minSurvivors - 1 when lower). */
  k?: number;
  t?: number;
  /**
   * Fewest inputs a sum may be unmasked with (the coordinator sets max(minClients, the DP plan's
   * minSurvivors)): collection aborts below it, and the threshold t is at least minSurvivors - 1,
   * so that no sum of fewer inputs can be unmasked even by reconstruction (#16 finding 8).
   */
  minSurvivors?: number;
  rng: RandomBytes;
  /** X25519 keys seen in earlier rounds (keys are never reused across rounds); the coordinator app keeps them in its store. */
  usedKeys?: UsedKeyRegistry;
  /**
   * Parameters of the round being opened when they change between rounds (adaptive clipping);
   * overrides clipNorm and noiseStddevPerClient. With `countNoiseStd` the summed vector gets one
   * extra integer coordinate for the clients' centred clipped-indicator bits (see SecureRoundPlan.countScale).
   */
  perRound?: () => { clipNorm: number; noiseStddevPerClient: number; countNoiseStd?: number; minSurvivors?: number };
}

/**
 * Largest per-client noise variance in integer units. The exact Poisson behind Skellam noise
 * costs about sqrt(rate) per draw, so a 32-bit ring's huge scale would make sampling take hours;
 * a noise std of 256 integer units already puts quantization error (< 1 unit) far below the noise.
 */
const MAX_NOISE_VARIANCE_INT = 2 ** 16;

/**
 * Encoding parameters (Kairouz et al. 2021 rule, see chooseEncodingParams). With DP noise, a
 * 32-bit ring makes the scale so large that the noise variance in integer units leaves the
 * samplers' range; quantization error is then far below the noise anyway, so the ring is
 * narrowed 2 bits at a time (smaller scale, same overflow bound) until the noise fits.
 */
function chooseEncoding(n: number, d: number, clip: number, noiseStddevPerClient: number): EncodingParams {
  for (let bits = 32; ; bits -= 2) {
    const p = chooseEncodingParams({ n, d, clip, noiseStddevPerClient, bits });
    const v = (noiseStddevPerClient * p.scale) ** 2;
    if (noiseStddevPerClient === 0 || v <= MAX_NOISE_VARIANCE_INT || bits <= 8) return p;
  }
}

/**
 * Integer scale S of the bit coordinate: as large as the ring allows with room for the sum of n
 * values +-S and 10 standard deviations of the summed noise (std 2 S sigma_b sqrt(n / minSurvivors)),
 * and small enough that a client's noise variance (2 S sigma_b)^2 / minSurvivors stays in the
 * samplers' range. Throws when not even S = 1 fits (then use more bits).
 */
export function chooseCountScale(n: number, bits: number, countNoiseStd: number, minSurvivors: number): number {
  const half = 2 ** (bits - 1);
  const byRing = half / (2 * (n + 20 * countNoiseStd * Math.sqrt(n / minSurvivors)));
  const byNoise = Math.sqrt(MAX_NOISE_VARIANCE_INT * minSurvivors) / (2 * countNoiseStd);
  const s = Math.floor(Math.min(byRing, byNoise, 1024));
  if (s < 1) throw new RangeError(`a ${bits}-bit ring cannot hold the noisy count of ${n} clients at count noise ${countNoiseStd}`);
  return s;
}

/**
 * (k, t) with t >= minSurvivors - 1 (#16 finding 8). Each survivor u's self-mask seed needs t
 * shares, all held by neighbours of u (never by u itself), so a sum can be unmasked only when it
 * holds at least t + 1 inputs; t >= minSurvivors - 1 therefore means no sum of fewer than
 * minSurvivors inputs, each carrying 1/minSurvivors of the noise variance, can be unmasked. k grows
 * with t when needed (k >= t, even below n - 1); t > k/2 (Bell et al. 2020) is kept. A cohort
 * smaller than minSurvivors is refused.
 */
export function thresholdForSurvivors(n: number, k: number, t: number, minSurvivors: number): { k: number; t: number } {
  if (n < minSurvivors) throw new RangeError(`a cohort of ${n} cannot reach ${minSurvivors} survivors`);
  const tt = Math.max(t, minSurvivors - 1);
  let kk = Math.max(k, tt);
  if (kk < n - 1 && kk % 2 === 1) kk += 1;
  kk = Math.min(kk, n - 1);
  return { k: kk, t: tt };
}

/** Least time between two walks of the pending clients looking for silence (tick runs on every message). */
const SILENCE_CHECK_MS = 1000;

/**
 * The coordinator's side of one securely aggregated round: the SecAgg+ server state machine,
 * stage deadlines (kept here, from the caller's clock), and the decoding of the summed integer
 * vector back into an averaged float delta. The coordinator never sees an individual update.
 */
export class SecureRound {
  readonly plan: SecureRoundPlan;
  private readonly server: SecAggServer;
  private stageDeadline: number;
  private readonly nameOf: Map<number, string>;
  /** Per client with an upload under way: its words received, and when tick last saw that number change. */
  private readonly uploadProgress = new Map<number, { words: number; at: number }>();
  /** When tick last walked the pending clients for silence (see SILENCE_CHECK_MS). */
  private silenceCheckedAt = -Infinity;

  constructor(
    round: number,
    cohort: string[],
    layout: TensorLayout[],
    private readonly opts: SecureAggregationOptions,
    private readonly collectDeadline: number,
    now: number,
  ) {
    const names = [...cohort].sort();
    const ids: Record<string, number> = {};
    const roster: Record<string, string> = {};
    const identities = new Map<number, Uint8Array>();
    names.forEach((name, i) => {
      const key = opts.identityOf(name);
      if (!key) throw new FederationError('permission-denied', `client ${name} has no enrolled identity key and cannot take part in secure aggregation`);
      ids[name] = i + 1;
      roster[name] = Buffer.from(key).toString('base64');
      identities.set(i + 1, key);
    });
    this.nameOf = new Map(names.map((n, i) => [i + 1, n]));
    const d = layout.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const chosen = chooseSecAggParams({ n: names.length, dropoutFraction: opts.dropoutFraction ?? 0.1, corruptFraction: opts.corruptFraction ?? 0 });
    const minSurvivors = Math.max(1, opts.minSurvivors ?? 1, opts.perRound?.().minSurvivors ?? 1);
    const { k, t } = thresholdForSurvivors(names.length, opts.k ?? chosen.k, opts.t ?? chosen.t, minSurvivors);
    const rc = opts.perRound?.() ?? { clipNorm: opts.clipNorm, noiseStddevPerClient: opts.noiseStddevPerClient ?? 0 };
    const encoding = chooseEncoding(names.length, d, rc.clipNorm, rc.noiseStddevPerClient);
    const countScale = rc.countNoiseStd !== undefined ? chooseCountScale(names.length, encoding.bits, rc.countNoiseStd, rc.minSurvivors ?? names.length) : undefined;
    const rotationSeed = Buffer.from(opts.rng(32)).toString('hex');
    // Every secure round carries the institutions' evaluation words (zeros from those that do not evaluate).
    const evalScale = secureEvalScale(names.length);
    this.plan = { ids, roster, k, t, encoding, rotationSeed, ...(countScale ? { countScale } : {}), evalScale };
    const dim = encoding.paddedDim + (countScale ? 1 : 0) + SECURE_EVAL_WORD_COUNT;
    // Every upload is staged until complete (memory O(d) per upload in flight, at most n d): a client
    // that stops mid-upload is dropped like any other instead of aborting the round (#16 finding 6).
    this.server = new SecAggServer({ round, cohort: names.map((_, i) => i + 1), identities, k, t, dim, rng: opts.rng, usedKeys: opts.usedKeys, minSurvivors, stagedUploads: names.length });
    this.stageDeadline = now + (opts.advertiseTimeoutMs ?? opts.stageTimeoutMs);
  }

  /** The protocol's stage (advertise, share, collect, consistency, unmask, finished, aborted). */
  get stage(): Stage | 'finished' | 'aborted' {
    return this.server.stage;
  }

  /** One exchange with a client: its message (if any), then what it should receive next. */
  exchange(clientName: string, stage: Stage | '', payload: Uint8Array): SecAggReply {
    const id = this.plan.ids[clientName];
    if (id === undefined) throw new FederationError('permission-denied', `client ${clientName} is not in this round's secure-aggregation cohort`);
    try {
      const reply = payload.length > 0 ? this.server.handle(id, stage, payload) : this.server.poll(id);
      if (reply.kind === 'message') return { kind: 'message', stage: reply.stage, payload: reply.bytes };
      if (reply.kind === 'aborted') return { kind: 'aborted', stage: '', payload: reply.bytes };
      const st = this.server.stage;
      return { kind: reply.kind, stage: st === 'finished' || st === 'aborted' ? '' : st, payload: new Uint8Array(0) };
    } catch (err) {
      if (err instanceof SecAggError) throw new FederationError('invalid-argument', `secure aggregation refused a message from ${clientName}: ${err.message} (check: ${err.check})`);
      throw err;
    }
  }

  /**
   * Closes the current stage when every expected client has answered or its deadline passed.
   * Returns true when the protocol has ended (finished or aborted).
   */
  tick(now: number, lastSeen?: (clientName: string) => number): boolean {
    const st = this.server.stage;
    if (st === 'finished' || st === 'aborted') return true;
    const pendingCount = this.server.pendingCount();
    const deadline = st === 'collect' ? Math.max(this.stageDeadline, this.collectDeadline) : this.stageDeadline;
    // While clients train (collect stage) they send heartbeats between training steps; when every
    // client still owed a masked input has been silent for the liveness window, it has vanished:
    // do not wait for the round deadline. Never a stage timeout: training may take far longer.
    // A client that started its upload is judged by its upload's progress, not by its polls: one
    // that sends part of its input and then only polls is as gone as a silent one (#16 finding 6).
    const active = (id: number) => {
      const words = this.server.uploadedWords(id);
      if (words === 0) return lastSeen!(this.nameOf.get(id)!);
      const p = this.uploadProgress.get(id);
      if (!p || p.words !== words) this.uploadProgress.set(id, { words, at: now });
      return this.uploadProgress.get(id)!.at;
    };
    // The silence check walks every pending client: tick runs on every message, so it runs at most once a second.
    const checkSilence = st === 'collect' && lastSeen !== undefined && pendingCount > 0 && now - this.silenceCheckedAt >= SILENCE_CHECK_MS;
    if (checkSilence) this.silenceCheckedAt = now;
    const allSilent = checkSilence && this.server.pending().map((id) => now - active(id) >= this.livenessMs).every(Boolean);
    if (pendingCount === 0 || now >= deadline || allSilent) {
      this.server.advance();
      this.stageDeadline = now + this.opts.stageTimeoutMs;
      const next = this.server.stage;
      return next === 'finished' || next === 'aborted';
    }
    return false;
  }

  /** How long a client owed a masked input may be silent before it counts as vanished. */
  get livenessMs(): number {
    return this.opts.livenessMs ?? Math.max(30_000, 3 * this.opts.stageTimeoutMs);
  }

  /** When the current stage's deadline passes (for the caller's wait loop). */
  nextDeadline(): number {
    return this.server.stage === 'collect' ? Math.max(this.stageDeadline, this.collectDeadline) : this.stageDeadline;
  }

  /** Clients that misbehaved in this attempt (share ciphertexts that did not open, a partial upload, inconsistent shares), by name. */
  misbehaved(): Map<string, string> {
    return new Map([...this.server.misbehaved()].map(([id, why]) => [this.nameOf.get(id)!, why.replace(/client(\(s\))? (\d+(?:, \d+)*)/g, (_, pl: string | undefined, list: string) => `client${pl ?? ''} ${this.names(list)}`)]));
  }

  /** "1, 2" -> "inst-a, inst-b" (ids in protocol messages are the roster's 1-based positions). */
  private names(list: string): string {
    return list
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .map((x) => this.nameOf.get(Number(x)) ?? x)
      .join(', ');
  }

  /** Why the protocol aborted, if it did (names the failed check; no secrets). */
  get abortReason(): string | undefined {
    const e = this.server.error;
    return e ? `secure aggregation aborted (${e.check}): ${e.message}` : undefined;
  }

  /** Stops the protocol (round deadline, shutdown). */
  abort(reason: string): void {
    if (this.server.stage !== 'finished' && this.server.stage !== 'aborted') this.server.abort('aborted', reason);
  }

  /** The survivors' names and their averaged delta, decoded from the unmasked integer sum. */
  result(layout: TensorLayout[]): { survivors: string[]; delta: NamedTensors; centredCount?: number; evaluation?: RoundEvaluation } {
    const { sum, survivors } = this.server.result();
    const { encoding, countScale, evalScale } = this.plan;
    const flat = decodeAverage(sum.subarray(0, encoding.paddedDim), survivors.length, encoding, Buffer.from(this.plan.rotationSeed, 'hex'));
    const delta: NamedTensors = new Map();
    let off = 0;
    for (const { name, shape } of layout) {
      const n = shape.reduce((a, b) => a * b, 1);
      delta.set(name, { shape: [...shape], data: flat.slice(off, off + n) });
      off += n;
    }
    const names = survivors.map((id) => this.nameOf.get(id)!).sort();
    const evalAt = encoding.paddedDim + (countScale ? 1 : 0);
    const evaluation = evalScale ? decodeEvalSums(sum.slice(evalAt, evalAt + SECURE_EVAL_WORD_COUNT), evalScale) : undefined;
    if (!countScale) return { survivors: names, delta, ...(evaluation ? { evaluation } : {}) };
    // The noisy sum of S (2 b_i - 1): divided by 2S it is sum_i (b_i - 1/2) + noise.
    const modulus = 2 ** encoding.bits;
    const word = encoding.bits === 32 ? sum[encoding.paddedDim]! : sum[encoding.paddedDim]! % modulus;
    const signed = word >= modulus / 2 ? word - modulus : word;
    return { survivors: names, delta, centredCount: signed / (2 * countScale), ...(evaluation ? { evaluation } : {}) };
  }
}
