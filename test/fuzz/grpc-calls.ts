/**
 * One hostile gRPC call, whatever its shape, reduced to the status it ends with. Frames are
 * already-serialized request bytes, so the same helper sends random bytes (passthrough
 * serializer, below any schema) and hostile but well-formed messages (serialized by the
 * service's own serializer beforehand). Every call has a deadline: a call that never gets a
 * status is reported as DEADLINE_EXCEEDED, which the fuzz test counts as a hang.
 */
import * as grpc from '@grpc/grpc-js';

/** The four call shapes of the Federation service. */
export type CallShape = 'unary' | 'server-stream' | 'client-stream';

/** A prepared hostile call. */
export interface HostileCall {
  /** Short method name, e.g. "UploadUpdate". */
  method: string;
  shape: CallShape;
  /** Serialized request messages (exactly one unless client-streaming). */
  frames: Buffer[];
  /** What the case is, for failure messages. */
  label: string;
  /** 'refused': must end with an error status (not INTERNAL/UNKNOWN); 'any': any status but INTERNAL/UNKNOWN; 'raw': bytes below the schema. */
  expect: 'refused' | 'any' | 'raw';
  /** gRPC metadata to send (signed envelopes, garbage auth); empty by default. Called at send time, so timestamps are fresh. */
  metadata?: () => grpc.Metadata;
  /** Client streams: cancel after writing this many frames (a truncated stream); server streams: cancel after this many responses. */
  cancelAfter?: number;
}

/** How a call ended. */
export interface CallOutcome {
  call: HostileCall;
  code: grpc.status;
  details: string;
  responses: number;
  ms: number;
}

const passthrough = (b: Buffer): Buffer => b;

/** Sends `c` on `client` (a plain grpc.Client) and resolves with its final status; never rejects. */
export function sendHostile(client: grpc.Client, service: string, c: HostileCall, deadlineMs: number): Promise<CallOutcome> {
  const path = `/${service}/${c.method}`;
  const started = Date.now();
  const options: grpc.CallOptions = { deadline: new Date(started + deadlineMs) };
  const md = c.metadata?.() ?? new grpc.Metadata();
  return new Promise<CallOutcome>((resolve) => {
    let responses = 0;
    let settled = false;
    const finish = (code: grpc.status, details: string): void => {
      if (settled) return;
      settled = true;
      resolve({ call: c, code, details, responses, ms: Date.now() - started });
    };
    if (c.shape === 'unary') {
      client.makeUnaryRequest(path, passthrough, passthrough, c.frames[0] ?? Buffer.alloc(0), md, options, (err) => {
        if (!err) responses++;
        finish(err?.code ?? grpc.status.OK, err?.details ?? '');
      });
    } else if (c.shape === 'server-stream') {
      const call = client.makeServerStreamRequest(path, passthrough, passthrough, c.frames[0] ?? Buffer.alloc(0), md, options);
      call.on('data', () => {
        responses++;
        if (c.cancelAfter !== undefined && responses >= c.cancelAfter) call.cancel();
      });
      call.on('error', () => undefined);
      call.on('status', (s: grpc.StatusObject) => finish(s.code, s.details));
    } else {
      const call = client.makeClientStreamRequest(path, passthrough, passthrough, md, options, (err) => {
        if (!err) responses++;
        finish(err?.code ?? grpc.status.OK, err?.details ?? '');
      });
      call.on('error', () => undefined);
      void writeAll(call, c.frames, c.cancelAfter);
    }
  });
}

async function writeAll(call: grpc.ClientWritableStream<Buffer>, frames: Buffer[], cancelAfter: number | undefined): Promise<void> {
  for (const [i, f] of frames.entries()) {
    if (cancelAfter !== undefined && i >= cancelAfter) {
      call.cancel();
      return;
    }
    let ok: boolean;
    try {
      ok = call.write(f);
    } catch {
      return; // the server already answered; the rest cannot be sent
    }
    if (!ok) await new Promise<void>((r) => call.once('drain', () => r()));
  }
  if (cancelAfter !== undefined && cancelAfter >= frames.length) call.cancel();
  else call.end();
}

/** Runs `calls` with at most `parallel` in flight; returns every outcome in order. */
export async function sendAll(client: grpc.Client, service: string, calls: HostileCall[], parallel: number, deadlineMs: number): Promise<CallOutcome[]> {
  const out: CallOutcome[] = new Array(calls.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < calls.length) {
      const i = next++;
      out[i] = await sendHostile(client, service, calls[i]!, deadlineMs);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, calls.length) }, worker));
  return out;
}

/** Why an outcome breaks the contract "a clear status, nothing crashes, nothing hangs", or undefined. */
export function contractViolation(o: CallOutcome): string | undefined {
  const { call, code, details } = o;
  const where = `${call.method} [${call.label}] -> ${grpc.status[code]} "${details.slice(0, 160)}"`;
  if (code === grpc.status.DEADLINE_EXCEEDED) return `no status before the deadline (hang): ${where}`;
  if (code === grpc.status.UNKNOWN) return `UNKNOWN status (an exception escaped a handler): ${where}`;
  if (code === grpc.status.UNAVAILABLE) return `server unavailable: ${where}`;
  if (code === grpc.status.CANCELLED && call.cancelAfter === undefined) return `cancelled without being cancelled: ${where}`;
  // INTERNAL is for the coordinator's own bugs only: a message that does not parse is the caller's fault
  // (INVALID_ARGUMENT, or UNAUTHENTICATED behind the signature gate; transport-grpc request-decoding.ts).
  if (code === grpc.status.INTERNAL) return `INTERNAL: ${where}`;
  if (call.expect === 'refused' && code === grpc.status.OK) return `accepted a hostile request: ${where}`;
  return undefined;
}
