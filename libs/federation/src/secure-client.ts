import type { Stage } from '@fedlora/secagg';
import { SecAggClient, encodeUpdate } from '@fedlora/secagg';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import type { Clock } from './clock.js';
import { yieldToEventLoop } from './attempt-liveness.js';
import { FederationError } from './errors.js';
import { updateTensors } from './lora-variant.js';
import { CLIP_INDICATOR_METRIC, countNoiseShareFor, plannedSurvivors } from './plan-privacy.js';
import { DEFAULT_SECURE_MINIMUMS, securePlanProblem, type SecureMinimums } from './secure-membership.js';
import { SECURE_EVAL_WORD_COUNT, encodeEvalWords } from './secure-evaluation.js';
import type { ClientReport, RoundPlan, SecAggReply, SecureRoundPlan } from './types.js';

/** One secure-aggregation exchange, as the connection offers it. */
export type SecAggExchange = (
  round: number,
  nonce: string,
  stage: Stage | '',
  payload: Uint8Array,
  report?: ClientReport,
  /** With an empty payload: let the coordinator hold the poll up to this long until the reply is not 'wait' (0: answer at once). */
  waitMs?: number,
) => Promise<SecAggReply>;

/** A client's secure-aggregation settings. */
export interface SecureClientOptions {
  /** This client's Ed25519 identity secret key (64 bytes, tweetnacl layout). */
  identitySecretKey: Uint8Array;
  rng: RandomBytes;
  /**
   * The federation's members (name -> Ed25519 identity key) from the member list the federation
   * authority signed (member-list.ts), or pinned: a roster naming anyone else, or another key
   * for a member, is refused. Never taken from the coordinator.
   */
  members: ReadonlyMap<string, Uint8Array>;
  /** This institution's own floors on cohort size, survivors, t and k (defaults DEFAULT_SECURE_MINIMUMS). */
  minimums?: Partial<SecureMinimums>;
  /** This client's integer noise share for distributed DP, if the plan asks for one. */
  noiseFor?: (plan: RoundPlan) => ((n: number) => Int32Array) | undefined;
  /** Fault injection (simulations): vanish, sending nothing, when the server's message for this stage arrives. */
  dropAtFor?: (plan: RoundPlan) => Stage | undefined;
  /**
   * Pause between polls while the server's next stage is not ready (default 100 ms). A simulation
   * running a thousand institutions in one process lengthens it, or their polls alone fill the CPU.
   */
  pollMs?: number;
  /**
   * Long poll (default 20 s): each poll asks the coordinator to hold it until the next stage (or
   * this long), so a waiting client costs one call per stage instead of one per pollMs. A
   * coordinator that answers at once (0, or one that predates long polls) falls back to pollMs.
   */
  longPollMs?: number;
}

/** How a client's secure round ended. */
export type SecureRoundEnd = 'finished' | 'aborted' | 'excluded' | 'vanished';

/** Flattens the tensors an update carries (`updateTensors`: B only with FFA-LoRA) in the plan's order into one vector. */
export function flattenInPlanOrder(plan: RoundPlan, t: NamedTensors): Float32Array {
  const carried = updateTensors(plan);
  const d = carried.reduce((a, x) => a + x.shape.reduce((p, q) => p * q, 1), 0);
  const out = new Float32Array(d);
  let off = 0;
  for (const { name } of carried) {
    const v = t.get(name);
    if (!v) throw new FederationError('invalid-argument', `update lacks tensor "${name}"`);
    out.set(v.data, off);
    off += v.data.length;
  }
  return out;
}

/**
 * The client's side of a SecAgg+ round: drives the secagg state machine through the
 * connection's exchange; trains (via `train`) only when the server asks for the masked input,
 * so keys are advertised and shared first; encodes the delta (clip, rotate, scale, round,
 * noise share, wrap) and streams it masked in chunks. `progress` (AttemptLiveness.progress) is
 * awaited between the encoding's phases and between chunks: the encoding is synchronous work
 * of seconds on a busy machine (the exact integer noise alone ~0.5-2 s for 32k words), during
 * which the client must still prove liveness and, in a simulation, let the coordinator run.
 */
export async function runSecureRound(
  exchange: SecAggExchange,
  plan: RoundPlan,
  clientName: string,
  train: () => Promise<{ delta: NamedTensors; numExamples: number; trainLoss: number; metrics?: Record<string, number> }>,
  opts: SecureClientOptions,
  clock: Clock,
  signal?: AbortSignal,
  progress: (step: number) => Promise<void> = yieldToEventLoop,
): Promise<SecureRoundEnd> {
  const sp = plan.secagg;
  const id = sp?.ids[clientName];
  if (!sp || id === undefined) throw new FederationError('invalid-argument', `the plan of round ${plan.round} has no secure-aggregation slot for ${clientName}`);
  const problem = securePlanRefusal(plan, clientName, opts);
  if (problem) throw new FederationError('permission-denied', `${clientName} refuses the secure-aggregation plan of round ${plan.round}: ${problem}`);
  const minimums = { ...DEFAULT_SECURE_MINIMUMS, ...opts.minimums };
  const identities = new Map(Object.entries(sp.roster).map(([name, key]) => [sp.ids[name]!, new Uint8Array(Buffer.from(key, 'base64'))]));
  // Unmask no sum of fewer inputs than this client's noise share was calibrated for (#16 finding 8),
  // nor than this institution's own floor (its config; a sum of one is that client's input).
  const minSurvivors = Math.max(plannedSurvivors(plan), minimums.minSurvivors);
  const client = new SecAggClient({ round: plan.round, clientId: id, identitySecretKey: opts.identitySecretKey, identities, rng: opts.rng, minSurvivors, expected: { cohort: [...identities.keys()], k: sp.k, t: sp.t } });
  const dropAt = opts.dropAtFor?.(plan);
  let report: ClientReport | undefined;
  let inputSet = false;
  const empty = new Uint8Array(0);
  while (!signal?.aborted) {
    const reply = await exchange(plan.round, plan.nonce, '', empty, undefined, opts.longPollMs ?? DEFAULT_LONG_POLL_MS);
    if (reply.kind === 'wait') {
      await clock.sleep(opts.pollMs ?? 100, signal);
      continue;
    }
    if (reply.kind === 'excluded' || reply.kind === 'finished') return reply.kind;
    if (reply.kind === 'aborted') return 'aborted';
    if (reply.stage === dropAt) return 'vanished';
    if (reply.stage === 'collect' && !inputSet) {
      const r = await train();
      await progress(-1);
      const noise = await noiseInSlices(opts.noiseFor?.(plan), sp.encoding.paddedDim, progress);
      const words = encodeUpdate(flattenInPlanOrder(plan, r.delta), sp.encoding, {
        rotationSeed: new Uint8Array(Buffer.from(sp.rotationSeed, 'hex')),
        rng: opts.rng,
        noise,
      });
      await progress(-1);
      const input = sp.countScale ? withCountWord(plan, sp, words, r.metrics, opts.rng) : words;
      client.setInput(sp.evalScale ? withEvalWords(input, r.metrics, Object.keys(sp.ids).length, sp.evalScale) : input);
      inputSet = true;
      report = { numExamples: r.numExamples, trainLoss: r.trainLoss };
    }
    let out;
    try {
      out = client.handle(reply.payload);
    } catch (err) {
      // A message our state machine refuses (out of stage, bad signature, ...) ends our part in
      // this round; the round itself treats us as dropped.
      throw new FederationError('failed-precondition', `secure aggregation of round ${plan.round} ended for ${clientName}: ${(err as Error).message}`);
    }
    if (out.kind === 'send') await exchange(plan.round, plan.nonce, out.stage, out.bytes);
    else if (out.kind === 'masked-input') {
      for (const chunk of out.chunks()) {
        await exchange(plan.round, plan.nonce, 'collect', chunk, report);
        report = undefined;
        await progress(-1);
      }
    } else if (out.kind === 'finished') return 'finished';
    else if (out.kind === 'aborted') return 'aborted';
  }
  return 'vanished';
}

/** Longest a secure-aggregation poll is held (well under the transport's 60 s call deadline). */
export const DEFAULT_LONG_POLL_MS = 20_000;

/** Words of integer noise drawn between two yields (~10-60 ms of sampling on an idle core). */
const NOISE_SLICE = 4096;

/**
 * Draws the client's noise share for `n` words in slices, awaiting `progress` between them, and
 * returns it as the `noise` option of encodeUpdate. The coordinates are independent draws, so
 * the concatenated slices have exactly the distribution of one draw of `n`.
 */
async function noiseInSlices(sample: ((n: number) => Int32Array) | undefined, n: number, progress: (step: number) => Promise<void>): Promise<((n: number) => Int32Array) | undefined> {
  if (!sample) return undefined;
  const z = new Int32Array(n);
  for (let off = 0; off < n; off += NOISE_SLICE) {
    z.set(sample(Math.min(NOISE_SLICE, n - off)), off);
    await progress(-1);
  }
  return (len) => {
    if (len !== n) throw new FederationError('invalid-argument', `the encoding asked for ${len} noise words, ${n} were drawn (the plan's paddedDim)`);
    return z;
  };
}

/**
 * Why this client refuses a secure plan (roster outside its member list, parameters below its
 * own minimums), or undefined. The client runner declines such a round before training.
 */
export function securePlanRefusal(plan: RoundPlan, clientName: string, opts: Pick<SecureClientOptions, 'identitySecretKey' | 'members' | 'minimums'>): string | undefined {
  if (!plan.secagg) return undefined;
  if (!opts.members || opts.members.size === 0) return 'this institution has no member list (membership in its config), so it cannot tell members from identities the coordinator made';
  return securePlanProblem(plan.secagg, clientName, opts.identitySecretKey.subarray(32, 64), opts.members, { ...DEFAULT_SECURE_MINIMUMS, ...opts.minimums });
}

/**
 * Federated evaluation over secure aggregation: appends this institution's evaluation words
 * (secure-evaluation.ts), masked with the rest of the input, so that the coordinator learns only
 * the survivors' sums. The cohort size (for the per-word cap) is the plan's roster, which this
 * client has already checked against its member list.
 */
function withEvalWords(words: Uint32Array, metrics: Record<string, number> | undefined, cohort: number, evalScale: number): Uint32Array {
  const out = new Uint32Array(words.length + SECURE_EVAL_WORD_COUNT);
  out.set(words);
  out.set(encodeEvalWords(metrics, cohort, evalScale), words.length);
  return out;
}

/**
 * Adaptive clipping over secure aggregation: appends the word S (2 b - 1) + noise share (mod 2^bits)
 * carrying this client's clipped-indicator bit b (Andrew et al. 2021, Algorithm 1), so that the
 * coordinator learns only the noisy sum of the survivors' centred bits.
 */
function withCountWord(plan: RoundPlan, sp: SecureRoundPlan, words: Uint32Array, metrics: Record<string, number> | undefined, rng: RandomBytes): Uint32Array {
  const bit = metrics?.[CLIP_INDICATOR_METRIC];
  if (bit !== 0 && bit !== 1) {
    throw new FederationError('failed-precondition', `round ${plan.round} uses adaptive clipping: the trainer must report metrics.${CLIP_INDICATOR_METRIC} (0 or 1), received ${String(bit)}`);
  }
  const noise = countNoiseShareFor(plan, rng);
  if (noise === undefined) throw new FederationError('invalid-argument', `round ${plan.round}: the secure plan carries a bit coordinate but the privacy plan has no count noise`);
  const mask = sp.encoding.bits === 32 ? 0xffffffff : 2 ** sp.encoding.bits - 1;
  const out = new Uint32Array(words.length + 1);
  out.set(words);
  out[words.length] = ((sp.countScale! * (2 * bit - 1) + noise) >>> 0) & mask;
  return out;
}
