import * as grpc from '@grpc/grpc-js';
import type { FederationCoordinator } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { DEFAULT_CHUNK_BYTES, TensorAssembler, chunkTensors } from '@fedlora/tensor';
import { federationService } from './proto.js';
import { chunkFromProto, chunkToProto, headerFromProto, secAggRequestFromProto, taskToProto } from './serde.js';
import type { RequestGate } from './request-auth.js';
import { RequestRefusedError, createRequestGate, withRequestBodyHashes } from './request-auth.js';
import type { RequestVerifier } from './security/request-verifier.js';
import { toServiceError } from './status-map.js';
import type { PbAuth, PbSecAggRequest, PbTensorChunk, PbUploadMessage } from './wire-types.js';

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
  /** Methods served unsigned even with a verifier (default ['GetStatus'], the read-only operator view). */
  unsignedMethods?: readonly string[];
  /**
   * Called for refused requests (audit log / metrics). `reason` is the authentication failure
   * (unknown-identity, revoked, bad-signature, stale, mismatch, replay, malformed, ...) or, for
   * other refusals, the gRPC status name in lower case.
   */
  onRefused?: (info: { method: string; clientId?: string; code: number; details: string; reason: string }) => void;
  /** Called for each RPC with bytes transferred (metrics). */
  onBytes?: (direction: 'in' | 'out', bytes: number) => void;
}

/** A running gRPC server; `port` is the bound port. */
export interface RunningServer {
  port: number;
  server: grpc.Server;
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
  });
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;

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
  type Claim = (req: never) => { round: number; client: string };
  const sessionClaim = (req: { clientId?: string; round?: number }) => ({ round: req.round ?? 0, client: req.clientId ?? '' });

  const unary =
    <Req, Res>(method: string, fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res, claim: Claim = sessionClaim): Unary<Req, Res> =>
    (call, cb) => {
      Promise.resolve()
        .then(() => {
          gate(call, method, { ...(claim as (r: Req) => { round: number; client: string })(call.request), request: call.request });
          return fn(call.request, call);
        })
        .then(
          (res) => cb(null, res),
          (err) => {
            const req = call.request as Partial<PbAuth> & { clientName?: string };
            cb(fail(method, err, req?.clientId || req?.clientName || undefined));
          },
        );
    };

  server.addService(opts.verifier ? withRequestBodyHashes(federationService()) : federationService(), {
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
    Decline: unary('Decline', (req: PbAuth & { round: number; reason: string }) => {
      coordinator.decline(req.clientId, req.sessionToken, req.round, req.reason);
      return {};
    }),
    Heartbeat: unary('Heartbeat', (req: PbAuth & { round: number }) => coordinator.heartbeat(req.clientId, req.sessionToken, req.round)),
    GetStatus: unary('GetStatus', () => {
      const s = coordinator.status();
      return {
        federationId: s.federationId,
        currentRound: s.currentRound,
        totalRounds: s.totalRounds,
        state: s.state,
        connectedClients: s.connectedClients,
        roundsJson: JSON.stringify(s.rounds),
      };
    }),
    SecAggExchange: unary('SecAggExchange', (req: PbSecAggRequest) => {
      const { report, payload } = secAggRequestFromProto(req);
      opts.onBytes?.('in', payload.byteLength);
      const r = coordinator.secAggExchange(req.clientId, req.sessionToken, req.round, req.nonce, req.stage, payload, report);
      opts.onBytes?.('out', r.payload.byteLength);
      return { kind: r.kind, stage: r.stage, payload: r.payload };
    }),
    DownloadAdapter: (call: grpc.ServerWritableStream<PbAuth & { round: number }, PbTensorChunk>) => {
      // emit('error') makes grpc-js end the stream with this status; destroy(err) never sends one and the caller hangs.
      void streamAdapter(call).catch((err) => call.emit('error', fail('DownloadAdapter', err, call.request.clientId)));
    },
    UploadUpdate: (call: grpc.ServerReadableStream<PbUploadMessage, unknown>, cb: grpc.sendUnaryData<{ accepted: boolean; message: string }>) => {
      const seen: { clientId?: string } = {};
      receiveUpdate(call, seen).then(
        (msg) => cb(null, { accepted: true, message: msg }),
        (err) => cb(fail('UploadUpdate', err, seen.clientId)),
      );
    },
  });

  async function streamAdapter(call: grpc.ServerWritableStream<PbAuth & { round: number }, PbTensorChunk>): Promise<void> {
    const { clientId, sessionToken, round } = call.request;
    gate(call, 'DownloadAdapter', { round, client: clientId, request: call.request });
    const { adapter } = coordinator.getAdapter(clientId, sessionToken, round);
    for (const c of chunkTensors(adapter, chunkBytes)) {
      if (call.cancelled) return;
      opts.onBytes?.('out', c.data.byteLength);
      if (!call.write(chunkToProto(round, c))) await new Promise((r) => call.once('drain', r));
    }
    call.end();
  }

  /** `seen.clientId` is set from the header so a refusal can name the client it claimed to be. */
  async function receiveUpdate(call: grpc.ServerReadableStream<PbUploadMessage, unknown>, seen: { clientId?: string }): Promise<string> {
    let header: ReturnType<typeof headerFromProto> | undefined;
    let asm: TensorAssembler | undefined;
    for await (const msg of call as AsyncIterable<PbUploadMessage>) {
      if (msg.header) {
        if (header) throw new FederationError('invalid-argument', 'upload carries two headers');
        header = headerFromProto(msg.header);
        const h = header.header;
        seen.clientId = h.clientId || undefined;
        gate(call, 'UploadUpdate', { round: h.round, client: h.clientId, request: msg });
        // Authenticate and check the layout against the open round before allocating anything.
        coordinator.authenticate(h.clientId, header.sessionToken);
        const plan = coordinator.openPlan(h.round);
        const expected = JSON.stringify(plan.tensors);
        if (JSON.stringify(h.tensors) !== expected) {
          throw new FederationError('invalid-argument', `update layout does not match the plan of round ${h.round} (tensor names, order and shapes must be the plan's)`);
        }
        asm = new TensorAssembler(plan.tensors);
      } else if (msg.chunk) {
        if (!asm || !header) throw new FederationError('invalid-argument', 'the first upload message must be the header');
        const c = chunkFromProto(msg.chunk);
        if (c.round !== header.header.round) throw new FederationError('invalid-argument', `chunk for round ${c.round} inside an upload for round ${header.header.round}`);
        opts.onBytes?.('in', c.data.byteLength);
        asm.add(c);
      } else {
        throw new FederationError('invalid-argument', 'empty upload message');
      }
    }
    if (!header || !asm) throw new FederationError('invalid-argument', 'upload ended before its header');
    const delta: NamedTensors = asm.finish();
    coordinator.submitUpdate(header.header.clientId, header.sessionToken, { header: header.header, delta });
    return `update for round ${header.header.round} accepted`;
  }

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(opts.address, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
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
