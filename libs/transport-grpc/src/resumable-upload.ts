import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { NamedTensors } from '@fedlora/tensor';
import { chunkTensors } from '@fedlora/tensor';
import type { HashedChunk, UploadProgress } from './serde.js';

/** How a client retries a broken upload stream. */
export interface UploadRetryPolicy {
  /** Retries after the first attempt (default 5); then the last error is thrown. */
  retries: number;
  /** Delay before the first retry (default 250 ms); doubles each time. */
  initialBackoffMs: number;
  /** Longest delay between retries (default 8000 ms). */
  maxBackoffMs: number;
}

export const DEFAULT_UPLOAD_RETRY: UploadRetryPolicy = { retries: 5, initialBackoffMs: 250, maxBackoffMs: 8000 };

/**
 * gRPC statuses after which an upload is worth resuming: the stream broke (UNAVAILABLE, CANCELLED,
 * DEADLINE_EXCEEDED), the coordinator was momentarily full (RESOURCE_EXHAUSTED), a chunk arrived
 * corrupted (DATA_LOSS: it was dropped, the verified prefix stays) or a newer stream took over
 * (ABORTED). Anything else is an answer about the update itself and is final.
 */
const RETRYABLE = new Set<number>([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.DEADLINE_EXCEEDED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.DATA_LOSS, grpc.status.ABORTED]);

/** True when a raw gRPC error (with a numeric `code`) should be retried by resuming the upload. */
export function isRetryableUploadError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' && RETRYABLE.has(code);
}

/** Delay before retry number `attempt` (1-based): exponential, capped. */
export function uploadBackoffMs(policy: UploadRetryPolicy, attempt: number): number {
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.max(0, attempt - 1));
}

/** SHA-256 of each tensor's raw little-endian bytes (computed once per upload, reused by every attempt). */
export function tensorDigests(delta: NamedTensors): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [name, t] of delta) out.set(name, createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest());
  return out;
}

/**
 * The chunks still to send, each with its SHA-256 and, on a tensor's last chunk, the whole
 * tensor's: every tensor from the offset the coordinator acknowledged (`progress`, or from 0
 * when it holds nothing). Tensors it holds whole are skipped. Chunks are views, not copies.
 */
export function* chunksToSend(delta: NamedTensors, digests: Map<string, Uint8Array>, progress: UploadProgress, chunkBytes: number): Generator<HashedChunk> {
  if (progress.state === 'completed') return;
  const acknowledged = new Map(progress.state === 'in-progress' ? progress.tensors.map((t) => [t.name, t.receivedBytes]) : []);
  for (const [name, start] of acknowledged) {
    const size = delta.get(name)?.data.byteLength;
    if (size !== undefined && start > size) throw new RangeError(`the coordinator acknowledges ${start} bytes of tensor "${name}", which has ${size}`);
  }
  for (const c of chunkTensors(delta, chunkBytes, acknowledged)) {
    const last = c.offset + c.data.length === c.totalBytes;
    yield { ...c, sha256: createHash('sha256').update(c.data).digest(), ...(last ? { tensorSha256: digests.get(c.tensorName)! } : {}) };
  }
}
