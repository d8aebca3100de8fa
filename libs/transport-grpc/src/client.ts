import * as grpc from '@grpc/grpc-js';
import type { CheckInAnswer, ClientReport, ClientUpdate, CoordinatorConnection, RoundPlan, SecAggReply, Task } from '@fedlora/federation';
import type { Stage } from '@fedlora/secagg';
import { FederationError } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_CHUNK_BYTES, TensorAssembler } from '@fedlora/tensor';
import { federationClientCtor } from './proto.js';
import type { UploadProgress } from './serde.js';
import { checkInAnswerFromProto, chunkFromProto, chunkToProto, headerToProto, secAggRequestToProto, secAggResponseFromProto, taskFromProto, uploadStatusFromProto } from './serde.js';
import type { UploadRetryPolicy } from './resumable-upload.js';
import { DEFAULT_UPLOAD_RETRY, chunksToSend, isRetryableUploadError, tensorDigests, uploadBackoffMs } from './resumable-upload.js';
import type { RequestSigner } from './security/request-signer.js';
import { fromServiceError } from './status-map.js';
import type { PbCheckInResult, PbGetTaskResponse, PbSecAggResponse, PbTensorChunk, PbUploadStatusResponse } from './wire-types.js';

/** Options of a client's connection to the coordinator. */
export interface GrpcConnectionOptions {
  /** host:port of the coordinator. */
  address: string;
  federationId?: string;
  credentials?: grpc.ChannelCredentials;
  chunkBytes?: number;
  /** Deadline for unary calls other than the long poll. */
  callTimeoutMs?: number;
  /** Expected name in the coordinator's certificate when it differs from the host dialled. */
  serverName?: string;
  /**
   * Signs every request (createRequestSigner with the client's enrolled identity): the envelope
   * covers the exact serialized request (for UploadUpdate: its header message) and travels in
   * the call's metadata. Required by coordinators with enrolled clients.
   */
  signer?: RequestSigner;
  /** Resuming a broken upload: retries and backoff (defaults: 5 retries, 250 ms doubling to 8 s). */
  uploadRetry?: Partial<UploadRetryPolicy>;
  /** Called before each upload retry (logs). */
  onUploadRetry?: (info: { round: number; attempt: number; delayMs: number; reason: string }) => void;
  /** Called when a download resumes an interrupted one of the same adapter (bytes already held). */
  onDownloadResumed?: (info: { round: number; receivedBytes: number }) => void;
  /** gRPC client interceptors (tracing, fault injection in tests). */
  interceptors?: grpc.Interceptor[];
  /**
   * One channel shared by many connections (many institutions in one process: a simulated
   * population or a fleet), so each costs a session, not a channel. The channel's owner closes
   * it; `close()` of a connection that shares one leaves it open.
   */
  channel?: grpc.Channel;
}

/** The channel settings of every connection (and of a shared channel: createSharedChannel). */
function connectionChannelOptions(opts: Pick<GrpcConnectionOptions, 'serverName'>): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': 8 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    // grpc-js backs off reconnecting up to 120 s by default: after a coordinator restart the channel
    // would stay down long after the coordinator is back. The client runner has its own backoff.
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 2000,
    ...(opts.serverName ? { 'grpc.ssl_target_name_override': opts.serverName, 'grpc.default_authority': opts.serverName } : {}),
  };
}

/** A channel for many connections to one coordinator (GrpcConnectionOptions.channel); the caller closes it. */
export function createSharedChannel(opts: Pick<GrpcConnectionOptions, 'address' | 'credentials' | 'serverName'>): grpc.Channel {
  return new grpc.Channel(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), connectionChannelOptions(opts));
}

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/**
 * The client side of the wire: implements CoordinatorConnection over gRPC. Only dials out.
 * Remembers its session token and the last plan (whose layout the adapter download is checked against).
 */
export class GrpcConnection implements CoordinatorConnection {
  private readonly client: AnyClient;
  private clientId = '';
  private token = '';
  private lastPlan: RoundPlan | undefined;
  /** What an interrupted download of the current plan's adapter already holds (resumed by the next call). */
  private partialDownload: { round: number; nonce: string; adapterSha256: string; asm: TensorAssembler } | undefined;

  constructor(private readonly opts: GrpcConnectionOptions) {
    const Ctor = federationClientCtor();
    this.client = new Ctor(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), {
      ...connectionChannelOptions(opts),
      ...(opts.interceptors ? { interceptors: opts.interceptors } : {}),
      ...(opts.channel ? { channelOverride: opts.channel } : {}),
    }) as unknown as AnyClient;
  }

  /** Metadata for one request: signed over the bytes the message serializes to (the same serializer grpc-js uses). */
  private metadataFor(method: string, round: number, message: object): grpc.Metadata {
    if (!this.opts.signer) return new grpc.Metadata();
    const def = federationClientCtor().service[method]!;
    return this.opts.signer(def.path, round, def.requestSerialize(message));
  }

  private unary<Res>(method: string, req: object, timeoutMs = this.opts.callTimeoutMs ?? 30_000): Promise<Res> {
    return this.rawUnary<Res>(method, req, timeoutMs).catch((err: unknown) => Promise.reject(fromServiceError(err)));
  }

  /** A unary call that rejects with the raw gRPC error (callers that decide on the status code). */
  private rawUnary<Res>(method: string, req: object, timeoutMs = this.opts.callTimeoutMs ?? 30_000): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      const metadata = this.metadataFor(method, typeof (req as { round?: unknown }).round === 'number' ? (req as { round: number }).round : 0, req);
      (this.client[method] as (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void).call(
        this.client,
        req,
        metadata,
        { deadline },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  }

  private get auth() {
    return { clientId: this.clientId, sessionToken: this.token };
  }

  async register(name: string, numExamples: number): Promise<{ clientId: string }> {
    const r = await this.unary<{ clientId: string; sessionToken: string }>('Register', { clientName: name, federationId: this.opts.federationId ?? '', numExamples });
    this.clientId = r.clientId;
    this.token = r.sessionToken;
    return { clientId: r.clientId };
  }

  async getTask(waitMs: number): Promise<Task> {
    const res = await this.unary<PbGetTaskResponse>('GetTask', { ...this.auth, waitMs }, waitMs + (this.opts.callTimeoutMs ?? 30_000));
    const task = taskFromProto(res);
    if (task.kind === 'train') this.lastPlan = task.plan;
    return task;
  }

  /**
   * Checks in many sessions at once (CheckIn), as `getTask(0)` would for each, except that a
   * session drawn into the open round hears only the attempt (`drawn`) and asks `getTask` for the
   * plan: one call for a process that holds many institutions on one shared channel
   * (GrpcConnectionOptions.channel). Returns one answer per connection, in order; a refused
   * session says why (for example 'unauthenticated': register it again).
   */
  static async checkIn(connections: readonly GrpcConnection[]): Promise<CheckInAnswer[]> {
    const first = connections[0];
    if (!first) return [];
    const res = await first.unary<{ results: PbCheckInResult[] }>('CheckIn', { sessions: connections.map((c) => c.auth) });
    if (res.results.length !== connections.length) throw new FederationError('invalid-argument', `a check-in of ${connections.length} sessions was answered with ${res.results.length} results`);
    return res.results.map(checkInAnswerFromProto);
  }

  async downloadAdapter(round: number): Promise<NamedTensors> {
    const plan = this.lastPlan;
    if (!plan || plan.round !== round) throw new FederationError('failed-precondition', `no plan for round ${round}: call getTask first`);
    // Resume an interrupted download of the same adapter from the bytes already verified.
    const p = this.partialDownload;
    const asm = p && p.round === round && p.nonce === plan.nonce && p.adapterSha256 === plan.adapterSha256 ? p.asm : new TensorAssembler(plan.tensors);
    this.partialDownload = { round, nonce: plan.nonce, adapterSha256: plan.adapterSha256, asm };
    const progress = asm.progress();
    const receivedBytes = progress.reduce((a, t) => a + t.receivedBytes, 0);
    const resume = receivedBytes > 0 ? progress.filter((t) => t.receivedBytes > 0 || t.totalBytes === 0) : [];
    if (receivedBytes > 0) this.opts.onDownloadResumed?.({ round, receivedBytes });
    const req = { ...this.auth, round, resume };
    const call = (this.client.DownloadAdapter as (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<PbTensorChunk>).call(this.client, req, this.metadataFor('DownloadAdapter', round, req));
    try {
      for await (const msg of call as AsyncIterable<PbTensorChunk>) {
        const c = chunkFromProto(msg);
        if (c.round !== round) throw new FederationError('invalid-argument', `coordinator sent a chunk of round ${c.round} for round ${round}`);
        if (c.sha256 && !createHash('sha256').update(c.data).digest().equals(c.sha256)) {
          // 'unavailable': a transport fault, so the client runner backs off and asks again.
          throw new FederationError(
            'unavailable',
            `downloaded chunk of tensor ${JSON.stringify(c.tensorName.slice(0, 80))} at offset ${c.offset} (${c.data.byteLength} bytes) fails its SHA-256 check: the adapter was corrupted in transit; it is downloaded again`,
          );
        }
        asm.add(c);
      }
    } catch (err) {
      call.cancel();
      throw err instanceof FederationError ? err : fromServiceError(err);
    }
    this.partialDownload = undefined;
    return asm.finish();
  }

  /**
   * Streams an update as a resumable upload: every chunk carries its SHA-256 and every tensor's
   * last chunk the tensor's. When the stream breaks (UNAVAILABLE, CANCELLED, deadline, ...) the
   * client asks the coordinator how much it holds (UploadStatus) and resumes there, with
   * exponential backoff, up to `uploadRetry.retries` times; then it fails with the last reason.
   */
  async uploadUpdate(update: ClientUpdate): Promise<void> {
    const policy = { ...DEFAULT_UPLOAD_RETRY, ...this.opts.uploadRetry };
    const uploadId = randomBytes(16).toString('base64url');
    const digests = tensorDigests(update.delta);
    const round = update.header.round;
    let progress: UploadProgress = { state: 'not-found' };
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) {
          progress = await this.uploadProgress(update.header, uploadId);
          if (progress.state === 'completed') return;
        }
        await this.uploadAttempt(update, uploadId, progress, digests);
        return;
      } catch (err) {
        if (!isRetryableUploadError(err)) throw fromServiceError(err);
        const reason = fromServiceError(err).message;
        if (attempt >= policy.retries) {
          throw new FederationError(
            'unavailable',
            `upload of the round ${round} update failed after ${attempt + 1} attempts (last: ${reason}); the coordinator keeps the verified part until the round closes`,
          );
        }
        const delayMs = uploadBackoffMs(policy, attempt + 1);
        this.opts.onUploadRetry?.({ round, attempt: attempt + 1, delayMs, reason });
        await new Promise((r) => setTimeout(r, delayMs));
      }
    }
  }

  /** Where upload `uploadId` stands on the coordinator; rejects with the raw gRPC error. */
  private async uploadProgress(h: ClientUpdate['header'], uploadId: string): Promise<UploadProgress> {
    const req = { ...this.auth, round: h.round, nonce: h.nonce, uploadId };
    return uploadStatusFromProto(await this.rawUnary<PbUploadStatusResponse>('UploadStatus', req));
  }

  /** One stream of the upload from `progress` on; rejects with the raw gRPC error. */
  private uploadAttempt(update: ClientUpdate, uploadId: string, progress: UploadProgress, digests: Map<string, Uint8Array>): Promise<void> {
    const chunkBytes = this.opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const headerMessage = { header: headerToProto(update.header, this.token, uploadId) };
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const wake: Array<() => void> = [];
      const settle = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        for (const w of wake.splice(0)) w();
        if (err) reject(err);
        else resolve();
      };
      type UploadFn = (m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { accepted: boolean; message: string }) => void) => grpc.ClientWritableStream<object>;
      const call = (this.client.UploadUpdate as UploadFn).call(this.client, this.metadataFor('UploadUpdate', update.header.round, headerMessage), (err, res) => {
        if (err) return settle(err);
        if (!res.accepted) return settle(new FederationError('failed-precondition', res.message));
        settle();
      });
      const send = async (msg: object): Promise<void> => {
        if (settled) throw new Error('upload call ended');
        if (!call.write(msg)) {
          await new Promise<void>((r) => {
            wake.push(r);
            call.once('drain', r);
          });
        }
      };
      const write = async (): Promise<void> => {
        await send(headerMessage);
        for (const c of chunksToSend(update.delta, digests, progress, chunkBytes)) await send({ chunk: chunkToProto(update.header.round, c) });
        if (!settled) call.end();
      };
      write().catch((err) => {
        if (settled) return; // the call already ended with its own status
        call.cancel();
        settle(err);
      });
    });
  }

  async secAggExchange(round: number, nonce: string, stage: Stage | '', payload: Uint8Array, report?: ClientReport, waitMs = 0): Promise<SecAggReply> {
    const res = await this.unary<PbSecAggResponse>('SecAggExchange', secAggRequestToProto(this.auth, round, nonce, stage, payload, report, waitMs));
    return secAggResponseFromProto(res);
  }

  async decline(round: number, reason: string): Promise<void> {
    await this.unary('Decline', { ...this.auth, round, reason });
  }

  async heartbeat(round: number): Promise<{ roundOpen: boolean }> {
    return this.unary<{ roundOpen: boolean }>('Heartbeat', { ...this.auth, round }, 5000);
  }

  /** Operator status (no session needed). */
  async status(): Promise<Record<string, unknown>> {
    const s = await this.unary<Record<string, unknown> & { roundsJson: string }>('GetStatus', {});
    const { roundsJson, ...rest } = s;
    return { ...rest, rounds: roundsJson ? JSON.parse(roundsJson) : [] };
  }

  close(): void {
    if (!this.opts.channel) this.client.close();
  }
}
