import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { FederationCoordinator } from '@fedlora/federation';
import { FederationError, updateTensors } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { DEFAULT_CHUNK_BYTES, chunkTensors } from '@fedlora/tensor';
import { federationService } from './proto.js';
import { checkInAnswerToProto, chunkFromProto, chunkToProto, headerFromProto, resumeOffsets, secAggRequestFromProto, stageFromProto, taskToProto, uploadIdFromProto, uploadStatusToProto } from './serde.js';
import type { RequestGate } from './request-auth.js';
import { RequestRefusedError, createRequestGate, withRequestBodyHashes } from './request-auth.js';
import { undecodableReason, withDecodeGuard } from './request-decoding.js';
import { AUTH_METADATA_KEYS } from './security/auth-metadata.js';
import type { RequestVerifier } from './security/request-verifier.js';
import { toServiceError } from './status-map.js';
import { statusToProto } from './status-view.js';
import { UploadRegistry, type UploadLease } from './upload-registry.js';
import { DEFAULT_UPLOAD_IDLE_MS, DEFAULT_UPLOAD_STREAM_MAX_MS, guardStream } from './upload-stream-guard.js';
import { UploadIntegrityError, type UploadSession } from './upload-session.js';
import type { PbAuth, PbDownloadRequest, PbSecAggRequest, PbTensorChunk, PbUploadMessage, PbUploadStatusRequest, PbUploadStatusResponse } from './wire-types.js';

/** Options of the gRPC front of a coordinator. */
export interface FederationServerOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  credentials?: grpc.ServerCredentials;
  chunkBytes?: number;
  /** Largest message accepted (chunks are 1 MiB by default). */
  maxReceiveMessageBytes?: number;
  /**
   * Admission check at registration (enrolment, revocation, mTLS identity): throw a
   * FederationError to refuse. Receives the gRPC call to read the peer certificate.
   */
  authorizeRegister?: (clientName: string, call: grpc.ServerUnaryCall<unknown, unknown>) => void;
  /**
   * Per-request authentication (request-auth.ts): every RPC must carry an envelope signed by an
   * enrolled, non-revoked identity, bound to the method, round, body hash and a fresh nonce.
   * Without a verifier requests are not signed-checked (simulations, unit tests).
   */
  verifier?: RequestVerifier;
  /**
   * Methods served unsigned even with a verifier (default none). GetStatus needs no signature but
   * names institutions only to a signed caller (status-view.ts).
   */
  unsignedMethods?: readonly string[];
  /**
   * Called for refused requests (audit log / metrics). `reason` is the authentication failure
   * (unknown-identity, revoked, bad-signature, stale, mismatch, replay, malformed, ...) or, for
   * other refusals, the gRPC status name in lower case.
   */
  onRefused?: (info: { method: string; clientId?: string; code: number; details: string; reason: string }) => void;
  /** Called for each RPC with bytes transferred (metrics). */
  onBytes?: (direction: 'in' | 'out', bytes: number) => void;
  /**
   * Bound on the bytes all uploads in progress hold together (default 512 MiB): partial resumable
   * uploads and streaming one-shot uploads. Beyond it a new upload is refused as RESOURCE_EXHAUSTED.
   */
  maxUploadBytes?: number;
  /** How often partial uploads of closed rounds are freed and their streams ended (default 2000 ms). */
  uploadSweepMs?: number;
  /** An upload stream with no message for this long is ended and its buffers freed (default 60 s). */
  uploadIdleMs?: number;
  /** No upload stream stays open longer than this (default 15 minutes). */
  uploadStreamMaxMs?: number;
  /** A resumable upload resumed at `offset` bytes, or completed (`offset` = its size): logs and metrics. */
  onUploadEvent?: (info: { event: 'upload.resumed' | 'upload.completed'; clientId: string; round: number; uploadId: string; offset: number }) => void;
}

/** A running gRPC server; `port` is the bound port. */
export interface RunningServer {
  port: number;
  server: grpc.Server;
  /** Uploads in progress (held bytes, resumable uploads): for metrics and tests. */
  uploads: UploadRegistry;
  close(): Promise<void>;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

/**
 * Serves a FederationCoordinator over gRPC: each RPC authenticates the session, delegates to the
 * transport-agnostic core, and maps errors to statuses in one place. Nothing a client sends can
 * throw out of a handler.
 */
export async function startFederationServer(coordinator: FederationCoordinator, opts: FederationServerOptions): Promise<RunningServer> {
  const maxRecv = opts.maxReceiveMessageBytes ?? 8 * 1024 * 1024;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxRecv,
    'grpc.max_send_message_length': 8 * 1024 * 1024,
    'grpc.keepalive_permit_without_calls': 1,
    // No channelz service is registered, and its per-call tracking doubled the garbage each call
    // leaves for the old generation (heap sampling at 10,000 institutions: 158 -> 78 MB per run).
    'grpc.enable_channelz': 0,
  });
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const uploadIdleMs = opts.uploadIdleMs ?? DEFAULT_UPLOAD_IDLE_MS;
  const uploadStreamMaxMs = opts.uploadStreamMaxMs ?? DEFAULT_UPLOAD_STREAM_MAX_MS;
  const uploads = new UploadRegistry({
    maxBytes: opts.maxUploadBytes,
    isLive: (round, nonce) => {
      try {
        return coordinator.openPlan(round).nonce === nonce;
      } catch {
        return false;
      }
    },
  });
  // Partial uploads of a round that closed are freed even if no upload call comes to sweep them.
  const sweeper = setInterval(() => uploads.sweep(), opts.uploadSweepMs ?? 2000);
  sweeper.unref();

  const fail = (method: string, err: unknown, clientId?: string): Partial<grpc.ServiceError> => {
    const se = toServiceError(err);
    const code = se.code ?? grpc.status.UNKNOWN;
    const reason = err instanceof RequestRefusedError ? err.reason : (grpc.status[code] ?? String(code)).toLowerCase();
    try {
      opts.onRefused?.({ method, clientId, code, details: se.details ?? '', reason });
    } catch {
      // An audit sink that fails (full disk) must not turn a refusal into a crash; the status still goes out.
    }
    return se;
  };
  const gate: RequestGate = opts.verifier ? createRequestGate({ verifier: opts.verifier, unsignedMethods: opts.unsignedMethods }) : () => undefined;
  type Claim = (req: never) => { round: number; client: string | undefined };
  const sessionClaim = (req: { clientId?: string; round?: number }) => ({ round: req.round ?? 0, client: req.clientId ?? '' });
  /**
   * Authenticates a call's first (or only) request message, then refuses it if it could not be
   * decoded: with signed requests an undecodable body is UNAUTHENTICATED unless its signature
   * verifies over those very bytes, and INVALID_ARGUMENT after that. Returns the verified signer.
   */
  const admit = (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown>, method: string, request: unknown, claim: { round: number; client: string | undefined }): string | undefined => {
    const bad = undecodableReason(request);
    const signer = gate(call, method, bad === undefined ? { ...claim, request } : { round: undefined, client: undefined, request });
    if (bad !== undefined) throw new FederationError('invalid-argument', bad);
    return signer;
  };
  /** GetStatus may be called unsigned (names redacted); a call that carries a signature must verify. */
  const optionallySigned = new Set(['GetStatus']);

  const unary =
    <Req, Res>(method: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>, signer: string | undefined) => Promise<Res> | Res, claim: Claim = sessionClaim): Unary<Req, Res> =>
    (call, cb) => {
      Promise.resolve()
        .then(() => {
          const bad = undecodableReason(call.request);
          if (optionallySigned.has(method) && call.metadata.get(AUTH_METADATA_KEYS.signature).length === 0) {
            if (bad !== undefined) throw new FederationError('invalid-argument', bad);
            return fn(call.request, call, undefined);
          }
          const claimed = bad === undefined ? (claim as (r: Req) => { round: number; client: string | undefined })(call.request) : { round: 0, client: undefined };
          return fn(call.request, call, admit(call, method, call.request, claimed));
        })
        .then(
          (res) => cb(null, res),
          (err) => {
            const req = call.request as Partial<PbAuth> & { clientName?: string };
            cb(fail(method, err, req?.clientId || req?.clientName || undefined));
          },
        );
    };

  // Deserializers never throw (request-decoding.ts); with a verifier they also capture each body's hash.
  const service = withDecodeGuard(federationService());
  server.addService(opts.verifier ? withRequestBodyHashes(service) : service, {
    Register: unary('Register', (req: { clientName: string; federationId: string; numExamples: number }, call) => {
      const federationId = coordinator.status().federationId;
      if (req.federationId && req.federationId !== federationId) {
        throw new FederationError('permission-denied', `this coordinator serves federation "${federationId}", not "${req.federationId}"`);
      }
      opts.authorizeRegister?.(req.clientName, call as grpc.ServerUnaryCall<unknown, unknown>);
      const r = coordinator.register(req.clientName, req.numExamples);
      return { clientId: r.clientId, sessionToken: r.sessionToken, federationId };
    }, ((req: { clientName: string }) => ({ round: 0, client: req.clientName })) as Claim),
    GetTask: unary('GetTask', async (req: PbAuth & { waitMs: number }) => taskToProto(await coordinator.getTask(req.clientId, req.sessionToken, req.waitMs))),
    CheckIn: unary('CheckIn', (req: { sessions: PbAuth[] }) => {
      // A signed request acts for the one institution that signed it: a batch of others' sessions is not served.
      if (opts.verifier) throw new FederationError('permission-denied', 'this coordinator verifies signed requests: each institution checks in with its own GetTask');
      const answers = coordinator.checkIn(req.sessions.map((x) => ({ clientId: x.clientId, token: x.sessionToken })));
      return { results: answers.map(checkInAnswerToProto) };
    }, (() => ({ round: 0, client: undefined })) as Claim),
    Decline: unary('Decline', (req: PbAuth & { round: number; reason: string }) => {
      coordinator.decline(req.clientId, req.sessionToken, req.round, req.reason);
      return {};
    }),
    Heartbeat: unary('Heartbeat', (req: PbAuth & { round: number }) => coordinator.heartbeat(req.clientId, req.sessionToken, req.round)),
    // Institution names only for a caller that proved an enrolled identity (#16 finding 12).
    GetStatus: unary('GetStatus', (_req: unknown, _call, signer) => statusToProto(coordinator.status(), signer !== undefined), (() => ({ round: 0, client: undefined })) as Claim),
    SecAggExchange: unary('SecAggExchange', async (req: PbSecAggRequest) => {
      const { report, payload } = secAggRequestFromProto(req);
      const stage = stageFromProto(req.stage ?? '');
      opts.onBytes?.('in', payload.byteLength);
      const r =
        payload.byteLength === 0 && (req.waitMs ?? 0) > 0
          ? await coordinator.secAggPoll(req.clientId, req.sessionToken, req.round, req.nonce, req.waitMs!)
          : coordinator.secAggExchange(req.clientId, req.sessionToken, req.round, req.nonce, stage, payload, report);
      opts.onBytes?.('out', r.payload.byteLength);
      return { kind: r.kind, stage: r.stage, payload: r.payload };
    }),
    DownloadAdapter: (call: grpc.ServerWritableStream<PbDownloadRequest, PbTensorChunk>) => {
      // emit('error') makes grpc-js end the stream with this status; destroy(err) never sends one and the caller hangs.
      void streamAdapter(call).catch((err) => call.emit('error', fail('DownloadAdapter', err, call.request.clientId)));
    },
    UploadStatus: unary('UploadStatus', (req: PbUploadStatusRequest) => uploadStatus(req)),
    UploadUpdate: (call: grpc.ServerReadableStream<PbUploadMessage, unknown>, cb: grpc.sendUnaryData<{ accepted: boolean; message: string }>) => {
      const seen: { clientId?: string } = {};
      receiveUpdate(call, seen).then(
        (msg) => cb(null, { accepted: true, message: msg }),
        // A stream the client cancelled (or lost) is not a refusal: nobody hears the answer, and a
        // resumable upload keeps its verified prefix for the next stream.
        (err) => cb(call.cancelled ? { code: grpc.status.CANCELLED, details: 'upload stream cancelled by the client' } : fail('UploadUpdate', err, seen.clientId)),
      );
    },
  });

  async function streamAdapter(call: grpc.ServerWritableStream<PbDownloadRequest, PbTensorChunk>): Promise<void> {
    const { clientId, sessionToken, round } = call.request;
    admit(call, 'DownloadAdapter', call.request, { round, client: clientId });
    const { adapter } = coordinator.getAdapter(clientId, sessionToken, round);
    const startAt = resumeOffsets(adapter, call.request.resume);
    for (const c of chunkTensors(adapter, chunkBytes, startAt)) {
      if (call.cancelled) return;
      opts.onBytes?.('out', c.data.byteLength);
      // Every chunk carries its SHA-256 so a client can name a corrupted chunk (and older clients ignore it).
      const sha256 = new Uint8Array(createHash('sha256').update(c.data).digest());
      if (!call.write(chunkToProto(round, { ...c, sha256 }))) await new Promise((r) => call.once('drain', r));
    }
    call.end();
  }

  /**
   * `seen.clientId` is set from the header so a refusal can name the client it claimed to be.
   * Resumable uploads (an upload id in the header) keep their verified prefix in the registry when
   * the stream breaks; one-shot uploads are all or nothing. Either way the coordinator sees the
   * update only once it is whole and every hash sent with it has been checked.
   */
  async function receiveUpdate(call: grpc.ServerReadableStream<PbUploadMessage, unknown>, seen: { clientId?: string }): Promise<string> {
    let header: ReturnType<typeof headerFromProto> | undefined;
    let session: UploadSession | undefined;
    let lease: UploadLease | undefined;
    let oneShotLease: UploadLease | undefined;
    let releaseOneShot: (() => void) | undefined;
    let alreadyCompleted = false;
    // Idle and total deadlines; the registry also ends the stream when a newer one replaces it or its round closes.
    const stream = guardStream(call as AsyncIterable<PbUploadMessage>, { idleMs: uploadIdleMs, maxMs: uploadStreamMaxMs });
    try {
      for await (const msg of stream.messages) {
        if (undecodableReason(msg) !== undefined) {
          // The first message is the signed one: an undecodable header is refused as unauthenticated unless its signature holds.
          if (!header) admit(call, 'UploadUpdate', msg, { round: 0, client: undefined });
          throw new FederationError('invalid-argument', undecodableReason(msg)!);
        }
        if (msg.header) {
          if (header) throw new FederationError('invalid-argument', 'upload carries two headers');
          header = headerFromProto(msg.header);
          const h = header.header;
          seen.clientId = h.clientId || undefined;
          uploads.sweep();
          gate(call, 'UploadUpdate', { round: h.round, client: h.clientId, request: msg });
          // Authenticate and check the layout against the open round before allocating anything.
          coordinator.authenticate(h.clientId, header.sessionToken);
          const plan = coordinator.openPlan(h.round);
          // An update carries the tensors the plan's LoRA variant trains (FFA-LoRA: only the B matrices).
          const carried = updateTensors(plan);
          const expected = JSON.stringify(carried);
          if (JSON.stringify(h.tensors) !== expected) {
            throw new FederationError('invalid-argument', `update layout does not match the plan of round ${h.round} (tensor names, order and shapes must be the plan's)`);
          }
          if (h.nonce !== plan.nonce) {
            throw new FederationError('failed-precondition', `update nonce does not match round ${plan.round} (attempt ${plan.attempt}); it belongs to an earlier attempt`);
          }
          // Only a cohort member that has not delivered yet may hold upload memory (a resumable upload that
          // completed is answered as such below: its client may not have heard the answer).
          if (!(header.uploadId && uploads.delivered(h, header.uploadId))) coordinator.expectUpdateFrom(h.clientId, h.round);
          if (header.uploadId) {
            const a = uploads.attach(h, header.uploadId, carried, stream.end);
            if (a.completed) {
              alreadyCompleted = true;
            } else {
              ({ session, lease } = a);
              if (a.resumed) opts.onUploadEvent?.({ event: 'upload.resumed', clientId: h.clientId, round: h.round, uploadId: header.uploadId, offset: a.resumedAt });
            }
          } else {
            const o = uploads.oneShot(h, carried, stream.end);
            session = o.session;
            oneShotLease = o.lease;
            releaseOneShot = o.release;
          }
        } else if (msg.chunk) {
          if (!header) throw new FederationError('invalid-argument', 'the first upload message must be the header');
          const c = chunkFromProto(msg.chunk);
          if (c.round !== header.header.round) throw new FederationError('invalid-argument', `chunk for round ${c.round} inside an upload for round ${header.header.round}`);
          if (alreadyCompleted) continue; // the upload was delivered before: nothing is counted twice
          uploads.checkLease((lease ?? oneShotLease)!);
          opts.onBytes?.('in', c.data.byteLength);
          session!.add(c);
        } else {
          throw new FederationError('invalid-argument', 'empty upload message');
        }
      }
      if (!header) throw new FederationError('invalid-argument', 'upload ended before its header');
      const round = header.header.round;
      if (!alreadyCompleted && !session!.complete) await cancellationSettled(call);
      if (alreadyCompleted) return `update for round ${round} accepted (upload ${header.uploadId} was already complete)`;
      uploads.checkLease((lease ?? oneShotLease)!);
      const delta: NamedTensors = session!.finish();
      try {
        coordinator.submitUpdate(header.header.clientId, header.sessionToken, { header: header.header, delta });
      } catch (err) {
        // The round refused the whole update (non-finite values, late, duplicate): resuming cannot fix it.
        if (lease) uploads.discard(lease);
        throw err;
      }
      uploads.complete((lease ?? oneShotLease)!);
      if (lease) opts.onUploadEvent?.({ event: 'upload.completed', clientId: header.header.clientId, round, uploadId: header.uploadId, offset: session!.byteSize });
      return `update for round ${round} accepted`;
    } catch (err) {
      if (lease && err instanceof UploadIntegrityError && err.discardUpload) uploads.discard(lease);
      throw err;
    } finally {
      if (lease) uploads.detach(lease);
      releaseOneShot?.();
    }
  }

  /**
   * grpc-js ends the request stream of a call the client reset before it flags the call
   * cancelled: an upload that stopped short waits briefly for that flag, so a broken stream is
   * not reported (and audited) as a client that half-closed too early.
   */
  function cancellationSettled(call: grpc.ServerReadableStream<PbUploadMessage, unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      if (call.cancelled) return resolve();
      const t = setTimeout(resolve, 250);
      call.once('cancelled', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  function uploadStatus(req: PbUploadStatusRequest): PbUploadStatusResponse {
    uploads.sweep();
    coordinator.authenticate(req.clientId, req.sessionToken);
    const uploadId = uploadIdFromProto(req.uploadId, 'uploadId');
    if (!uploadId) throw new FederationError('invalid-argument', 'uploadId is required');
    // A round that is not open has nothing to resume: say so instead of "not found", so the client stops.
    const plan = coordinator.openPlan(req.round);
    if (req.nonce !== plan.nonce) {
      throw new FederationError('failed-precondition', `upload status for an earlier attempt of round ${req.round}: its uploads were discarded when the attempt ended`);
    }
    return uploadStatusToProto(uploads.status(req.clientId, req.round, req.nonce, uploadId));
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.address, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    server,
    uploads,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sweeper);
        uploads.clear();
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      }),
  };
}
