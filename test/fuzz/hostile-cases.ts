/**
 * Hostile requests for every RPC of the Federation service, generated from a seeded random
 * source (reproducible): random bytes and mutated valid messages below the schema, and
 * well-formed messages with hostile values -- unknown clients, forged sessions, wrong rounds and
 * nonces, huge shapes, NaN and Inf, negative and out-of-range offsets, oversized chunks,
 * duplicate headers, truncated and cancelled streams.
 */
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { RandomBytes } from '@fedlora/tensor';
import type { CallShape, HostileCall } from './grpc-calls.js';

/** The wire view of an open round, as a client receives it in GetTask. */
export interface WirePlan {
  round: number;
  nonce: string;
  adapterSha256: string;
  tensors: Array<{ name: string; shape: number[]; dtype: string }>;
}

/** A registered (but malicious) client's session. */
export interface Session {
  clientId: string;
  sessionToken: string;
}

/** A small deterministic helper over a RandomBytes source. */
export class Dice {
  constructor(private readonly random: RandomBytes) {}
  /** Uniform integer in [0, n). */
  int(n: number): number {
    const b = this.random(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    return Buffer.from(this.random(n));
  }
  /** Lengths skewed towards small messages, sometimes tens of KiB. */
  length(): number {
    return this.pick([0, 1, 2, 3, 5, 8, 16, 64, 200, 1024, 4096, 40_000]) + this.int(8);
  }
}

/** Serializers and call shapes of the service, keyed by short method name. */
export interface ServiceShapes {
  shape(method: string): CallShape;
  serialize(method: string, message: object): Buffer;
  methods: string[];
}

/** Reads shapes and serializers from a grpc-js service definition. */
export function serviceShapes(def: grpc.ServiceDefinition): ServiceShapes {
  return {
    methods: Object.keys(def),
    shape: (m) => (def[m]!.requestStream ? 'client-stream' : def[m]!.responseStream ? 'server-stream' : 'unary'),
    serialize: (m, message) => def[m]!.requestSerialize(message),
  };
}

/** Mutations of a valid frame: bit flips, truncation, garbage appended, a byte run overwritten. */
function mutate(d: Dice, frame: Buffer): Buffer {
  const f = Buffer.from(frame);
  switch (d.int(4)) {
    case 0:
      for (let k = 0; k < 1 + d.int(8) && f.length > 0; k++) f[d.int(f.length)] ^= 1 << d.int(8);
      return f;
    case 1:
      return f.subarray(0, d.int(Math.max(f.length, 1)));
    case 2:
      return Buffer.concat([f, d.bytes(1 + d.int(64))]);
    default: {
      const at = d.int(Math.max(f.length, 1));
      return Buffer.concat([f.subarray(0, at), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), f.subarray(at)]);
    }
  }
}

/** Random bytes and mutated valid messages, `perMethod` for every RPC (below the schema). */
export function rawCases(d: Dice, s: ServiceShapes, valid: Record<string, object[]>, perMethod: number): HostileCall[] {
  const out: HostileCall[] = [];
  for (const method of s.methods) {
    const shape = s.shape(method);
    const seeds = (valid[method] ?? [{}]).map((m) => s.serialize(method, m));
    for (let i = 0; i < perMethod; i++) {
      const mutated = i % 2 === 1;
      const frame = (): Buffer => (mutated ? mutate(d, d.pick(seeds)) : d.bytes(d.length()));
      const frames = shape === 'client-stream' ? Array.from({ length: 1 + d.int(4) }, frame) : [frame()];
      out.push({ method, shape, frames, label: mutated ? 'mutated valid message' : 'random bytes', expect: 'raw' });
    }
  }
  return out;
}

const HUGE = 4_294_967_295;

/** Well-formed requests from clients that do not exist or sessions that are forged: all refused. */
export function strangerCases(d: Dice, s: ServiceShapes, honestIds: string[], count: number): HostileCall[] {
  const out: HostileCall[] = [];
  const ids = (): string => d.pick([...honestIds, 'ghost', '', 'x'.repeat(5000), '\u0000\u202e', `ghost-${d.int(1e6)}`]);
  const token = (): string => d.pick(['', 'forged', d.bytes(16).toString('hex'), 'x'.repeat(10_000)]);
  const round = (): number => d.pick([0, 1, 2, 7, HUGE]);
  const make: Array<() => HostileCall> = [
    () => unary(s, 'Register', { clientName: d.pick(['', 'x'.repeat(70_000), '../../etc/passwd', 'unenrolled', '\u0000']), federationId: d.pick(['', 'fed-fuzz', 'other']), numExamples: d.pick([0, 1, HUGE]) }, 'unenrolled or malformed name', 'refused'),
    () => unary(s, 'Register', { clientName: 'mallory', federationId: 'another-federation', numExamples: 1 }, 'foreign federation', 'refused'),
    // Echoed in the status message: ~180 KB once percent-encoded, more than an HTTP/2 trailer may carry.
    () => unary(s, 'Register', { clientName: 'mallory', federationId: '\u00ff'.repeat(30_000), numExamples: 1 }, 'foreign federation id of 30k non-ASCII characters', 'refused'),
    () => unary(s, 'GetTask', { clientId: ids(), sessionToken: token(), waitMs: d.pick([0, HUGE]) }, 'unknown client or forged token', 'refused'),
    () => ({ ...unary(s, 'DownloadAdapter', { clientId: ids(), sessionToken: token(), round: round() }, 'download without a session', 'refused'), shape: 'server-stream' }),
    () => unary(s, 'Decline', { clientId: ids(), sessionToken: token(), round: round(), reason: 'x'.repeat(d.int(100_000)) }, 'decline without a session', 'refused'),
    () => unary(s, 'Heartbeat', { clientId: ids(), sessionToken: token(), round: round() }, 'heartbeat without a session', 'refused'),
    () => unary(s, 'SecAggExchange', { clientId: ids(), sessionToken: token(), round: round(), stage: d.pick(['', 'advertise', 'unmask', '\u0000']), payload: d.bytes(d.length()), nonce: token(), reportJson: d.pick(['', '{', '{"numExamples":1e308}']) }, 'secagg without a session', 'refused'),
    () => upload(s, [{ header: { clientId: ids(), sessionToken: token(), round: round(), nonce: token(), numExamples: 1, trainLoss: 0, tensors: [] } }], 'upload without a session', 'refused'),
    () => unary(s, 'GetStatus', {}, 'status (always answered)', 'any'),
  ];
  for (let i = 0; i < count; i++) out.push(make[i % make.length]!());
  return out;
}

/** Hostile requests from an enrolled client with a valid session, aimed at the open round. */
export function insiderCases(d: Dice, s: ServiceShapes, me: Session, plan: WirePlan, reps: number): HostileCall[] {
  const out: HostileCall[] = [];
  const header = (over: Record<string, unknown> = {}): object => ({ header: { ...me, round: plan.round, nonce: plan.nonce, numExamples: 10, trainLoss: 1, tensors: plan.tensors, ...over } });
  const sizeOf = (t: WirePlan['tensors'][number]): number => 4 * t.shape.reduce((a, b) => a * b, 1);
  const chunk = (t: WirePlan['tensors'][number], fill: number, over: Record<string, unknown> = {}): object => ({
    chunk: { round: plan.round, tensorName: t.name, offset: 0, totalBytes: sizeOf(t), data: Buffer.from(new Float32Array(sizeOf(t) / 4).fill(fill).buffer), ...over },
  });
  const full = (fill: number): object[] => plan.tensors.map((t) => chunk(t, fill));
  const t0 = plan.tensors[0]!;
  const cases: Array<[string, object[], number?]> = [
    ['NaN values', [header(), ...full(Number.NaN)]],
    ['Inf values', [header(), ...full(Number.POSITIVE_INFINITY)]],
    ['NaN train loss', [header({ trainLoss: Number.NaN }), ...full(0)]],
    ['zero examples', [header({ numExamples: 0 }), ...full(0)]],
    ['absurd example count', [header({ numExamples: HUGE }), ...full(0)]],
    ['next round', [header({ round: plan.round + 1 }), ...full(0)]],
    ['huge round', [header({ round: HUGE }), ...full(0)]],
    ['stale nonce', [header({ nonce: 'not-the-plan-nonce' }), ...full(0)]],
    ['huge shapes', [header({ tensors: plan.tensors.map((t) => ({ ...t, shape: [HUGE, HUGE] })) }), ...full(0)]],
    ['renamed tensor', [header({ tensors: plan.tensors.map((t, i) => (i === 0 ? { ...t, name: 'evil' } : t)) }), ...full(0)]],
    ['float64 dtype', [header({ tensors: plan.tensors.map((t) => ({ ...t, dtype: 'float64' })) }), ...full(0)]],
    ['another client in the header', [header({ clientId: 'honest-1' }), ...full(0)]],
    // protobufjs turns a negative JS number into 0 for a uint64; send -1's 64-bit two's complement instead.
    ['negative offset (-1 as 64-bit varint)', [header(), chunk(t0, 0, { offset: '18446744073709551615' }), ...full(0).slice(1)]],
    ['offset past 2^53', [header(), chunk(t0, 0, { offset: '9007199254740993' }), ...full(0).slice(1)]],
    ['offset past the end', [header(), chunk(t0, 0, { offset: sizeOf(t0) * 4 }), ...full(0).slice(1)]],
    ['wrong total bytes', [header(), chunk(t0, 0, { totalBytes: sizeOf(t0) + 4 }), ...full(0).slice(1)]],
    ['unaligned data', [header(), chunk(t0, 0, { data: Buffer.alloc(sizeOf(t0) - 3) }), ...full(0).slice(1)]],
    ['overlapping chunks', [header(), chunk(t0, 0), ...full(0)]],
    ['unknown tensor chunk', [header(), chunk(t0, 0, { tensorName: 'evil' }), ...full(0)]],
    ['chunk of another round', [header(), chunk(t0, 0, { round: plan.round + 1 }), ...full(0).slice(1)]],
    ['oversized chunk (9 MiB)', [header(), chunk(t0, 0, { data: Buffer.alloc(9 << 20), totalBytes: 9 << 20 })]],
    ['two headers', [header(), header(), ...full(0)]],
    ['chunk before header', [...full(0), header()]],
    ['empty message', [header(), {}, ...full(0)]],
    ['truncated stream (half the chunks)', [header(), ...full(0).slice(0, Math.max(1, plan.tensors.length >> 1))]],
    ['header only', [header()]],
    ['nothing at all', []],
    // Resumable uploads (an upload id in the header): hashes are required and checked. Each case has
    // its own id, and none sends a whole valid update, so no case can complete another's upload.
    ['resumable without chunk hashes', [header({ uploadId: 'fuzz-no-hashes-0000' }), ...full(0)]],
    ['resumable with wrong chunk hashes', [header({ uploadId: 'fuzz-bad-hashes-000' }), ...full(0).map((m) => withHashes(m, new Uint8Array(32), new Uint8Array(32)))]],
    ['resumable with a wrong tensor hash', [header({ uploadId: 'fuzz-bad-tensor-000' }), ...full(0).map((m) => withHashes(m, undefined, new Uint8Array(32).fill(1)))]],
    ['digest of 31 bytes', [header({ uploadId: 'fuzz-short-digest-0' }), ...full(0).map((m) => withHashes(m, new Uint8Array(31)))]],
    ['malformed upload id', [header({ uploadId: '../../etc' }), ...full(0)]],
  ];
  for (let r = 0; r < reps; r++) {
    for (const [label, msgs] of cases) out.push(upload(s, msgs, label, 'refused'));
    out.push({ ...upload(s, [header(), ...full(0)], 'cancelled mid-stream', 'any'), cancelAfter: 1 + d.int(plan.tensors.length) });
    out.push({ ...unary(s, 'DownloadAdapter', { ...me, round: plan.round }, 'download cancelled after one chunk', 'any'), shape: 'server-stream', cancelAfter: 1 });
    out.push({ ...unary(s, 'DownloadAdapter', { ...me, round: d.pick([0, plan.round + 1, HUGE]) }, 'download of a round that is not open', 'refused'), shape: 'server-stream' });
    out.push(unary(s, 'Heartbeat', { ...me, round: d.pick([0, plan.round + 3, HUGE]) }, 'heartbeat for another round', 'any'));
    out.push(unary(s, 'Decline', { ...me, round: d.pick([0, plan.round + 3, HUGE]), reason: 'x'.repeat(d.int(50_000)) }, 'decline of another round', 'any'));
    out.push(unary(s, 'GetTask', { ...me, waitMs: 0 }, 'poll', 'any'));
    out.push(unary(s, 'SecAggExchange', { ...me, round: plan.round, stage: d.pick(['advertise', 'share', 'masked', 'unmask', '??']), payload: d.bytes(d.length()), nonce: plan.nonce, reportJson: '' }, 'secagg in a plain round', 'refused'));
  }
  return out;
}

/** An upload chunk message with its SHA-256 (the real one unless `sha256` is given) and a tensor hash. */
function withHashes(m: object, sha256?: Uint8Array, tensorSha256?: Uint8Array): object {
  const c = (m as { chunk: { data: Uint8Array } }).chunk;
  return { chunk: { ...c, sha256: sha256 ?? createHash('sha256').update(c.data).digest(), ...(tensorSha256 ? { tensorSha256 } : {}) } };
}

function unary(s: ServiceShapes, method: string, message: object, label: string, expect: HostileCall['expect']): HostileCall {
  return { method, shape: 'unary', frames: [s.serialize(method, message)], label, expect };
}

function upload(s: ServiceShapes, messages: object[], label: string, expect: HostileCall['expect']): HostileCall {
  return { method: 'UploadUpdate', shape: 'client-stream', frames: messages.map((m) => s.serialize('UploadUpdate', m)), label, expect };
}
