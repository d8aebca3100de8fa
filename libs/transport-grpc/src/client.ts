import * as grpc from '@grpc/grpc-js';
import type { ClientUpdate, CoordinatorConnection, RoundPlan, Task } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { DEFAULT_CHUNK_BYTES, TensorAssembler, chunkTensors } from '@fedlora/tensor';
import { federationClientCtor } from './proto.js';
import { chunkFromProto, chunkToProto, headerToProto, secAggRequestToProto, secAggResponseFromProto, taskFromProto } from './serde.js';
import type { RequestSigner } from './security/request-signer.js';
import { fromServiceError } from './status-map.js';
import type { PbGetTaskResponse, PbSecAggResponse, PbTensorChunk } from './wire-types.js';

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

  constructor(private readonly opts: GrpcConnectionOptions) {
    const Ctor = federationClientCtor();
    this.client = new Ctor(opts.address, opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      ...(opts.serverName ? { 'grpc.ssl_target_name_override': opts.serverName, 'grpc.default_authority': opts.serverName } : {}),
    }) as unknown as AnyClient;
  }

  /** Metadata for one request: signed over the bytes the message serializes to (the same serializer grpc-js uses). */
  private metadataFor(method: string, round: number, message: object): grpc.Metadata {
    if (!this.opts.signer) return new grpc.Metadata();
    const def = federationClientCtor().service[method]!;
    return this.opts.signer(def.path, round, def.requestSerialize(message));
  }

  private unary<Res>(method: string, req: object, timeoutMs = this.opts.callTimeoutMs ?? 30_000): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const deadline = new Date(Date.now() + timeoutMs);
      const metadata = this.metadataFor(method, typeof (req as { round?: unknown }).round === 'number' ? (req as { round: number }).round : 0, req);
      (this.client[method] as (r: object, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void).call(
        this.client,
        req,
        metadata,
        { deadline },
        (err, res) => (err ? reject(fromServiceError(err)) : resolve(res)),
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

  async downloadAdapter(round: number): Promise<NamedTensors> {
    const plan = this.lastPlan;
    if (!plan || plan.round !== round) throw new FederationError('failed-precondition', `no plan for round ${round}: call getTask first`);
    const asm = new TensorAssembler(plan.tensors);
    const req = { ...this.auth, round };
    const call = (this.client.DownloadAdapter as (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<PbTensorChunk>).call(this.client, req, this.metadataFor('DownloadAdapter', round, req));
    try {
      for await (const msg of call as AsyncIterable<PbTensorChunk>) {
        const c = chunkFromProto(msg);
        if (c.round !== round) throw new FederationError('invalid-argument', `coordinator sent a chunk of round ${c.round} for round ${round}`);
        asm.add(c);
      }
    } catch (err) {
      call.cancel();
      throw err instanceof FederationError ? err : fromServiceError(err);
    }
    return asm.finish();
  }

  async uploadUpdate(update: ClientUpdate): Promise<void> {
    const chunkBytes = this.opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const headerMessage = { header: headerToProto(update.header, this.token) };
    await new Promise<void>((resolve, reject) => {
      type UploadFn = (m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { accepted: boolean; message: string }) => void) => grpc.ClientWritableStream<object>;
      const call = (this.client.UploadUpdate as UploadFn).call(
        this.client,
        this.metadataFor('UploadUpdate', update.header.round, headerMessage),
        (err, res) => {
          if (err) return reject(fromServiceError(err));
          if (!res.accepted) return reject(new FederationError('failed-precondition', res.message));
          resolve();
        },
      );
      const write = async (): Promise<void> => {
        const send = async (msg: object): Promise<void> => {
          if (!call.write(msg)) await new Promise((r) => call.once('drain', r));
        };
        await send(headerMessage);
        for (const c of chunkTensors(update.delta, chunkBytes)) await send({ chunk: chunkToProto(update.header.round, c) });
        call.end();
      };
      write().catch((err) => {
        call.cancel();
        reject(err);
      });
    });
  }

  async secAggExchange(round: number, nonce: string, stage: string, payload: Uint8Array, report?: { numExamples: number; trainLoss: number }) {
    const res = await this.unary<PbSecAggResponse>('SecAggExchange', secAggRequestToProto(this.auth, round, nonce, stage, payload, report));
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
    this.client.close();
  }
}
