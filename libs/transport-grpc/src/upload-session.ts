import { createHash, type Hash } from 'node:crypto';
import type { TensorLayout } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { sizeOf } from '@fedlora/tensor';
import type { HashedChunk } from './serde.js';

/**
 * Bytes that do not match the SHA-256 sent with them (gRPC DATA_LOSS). `discardUpload` is true when
 * the verified prefix cannot be trusted any more (a whole-tensor mismatch: the client's chunks did
 * not come from the tensor it hashed), so the upload restarts from offset 0.
 */
export class UploadIntegrityError extends Error {
  override name = 'UploadIntegrityError';
  constructor(
    message: string,
    readonly discardUpload: boolean,
  ) {
    super(message);
  }
}

interface TensorState {
  shape: number[];
  bytes: Uint8Array;
  /** Bytes received and verified from offset 0. */
  received: number;
  /** SHA-256 over bytes[0, received), so the whole-tensor check costs nothing extra at the end. */
  hash: Hash;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function bad(message: string): FederationError {
  return new FederationError('invalid-argument', message);
}

/**
 * One update being received: a buffer per announced tensor that only ever holds a verified
 * prefix. Chunks of a tensor arrive in order; a chunk is checked (layout, offset, size, its
 * SHA-256, and on a tensor's last chunk the whole-tensor SHA-256) before a byte is copied, so a
 * refused chunk leaves the session exactly as it was and the upload can resume after it.
 * One-shot uploads refuse any overlap; resumable ones skip bytes they already hold if identical.
 */
export class UploadSession {
  private readonly tensors = new Map<string, TensorState>();
  /** Bytes held by the buffers (what the registry's memory bound counts). */
  readonly byteSize: number;

  /** `requireHashes`: resumable uploads must hash every chunk and every tensor. */
  constructor(
    layout: readonly TensorLayout[],
    readonly requireHashes: boolean,
  ) {
    let total = 0;
    for (const { name, shape } of layout) {
      const n = sizeOf(shape) * 4;
      this.tensors.set(name, { shape: [...shape], bytes: new Uint8Array(n), received: 0, hash: createHash('sha256') });
      total += n;
    }
    this.byteSize = total;
  }

  /** Verifies one chunk and appends it; throws (FederationError or UploadIntegrityError) without changing anything. */
  add(chunk: HashedChunk): void {
    const name = chunk.tensorName;
    const t = this.tensors.get(name);
    const label = `tensor ${JSON.stringify(name.slice(0, 80))}`;
    if (!t) throw bad(`chunk for unknown ${label}`);
    const { offset, data } = chunk;
    if (chunk.totalBytes !== t.bytes.length) throw bad(`${label}: chunk says ${chunk.totalBytes} bytes in all, expected ${t.bytes.length}`);
    if (offset > t.received) throw bad(`${label}: chunk at offset ${offset}, expected ${t.received}`);
    const end = offset + data.byteLength;
    if (end > t.bytes.length) throw bad(`${label}: chunk overruns the tensor (${end} > ${t.bytes.length} bytes)`);
    if (offset < t.received && !this.requireHashes) throw bad(`${label}: chunk at offset ${offset} overlaps bytes already received (expected offset ${t.received})`);
    if (!chunk.sha256 && this.requireHashes) throw bad(`${label}: chunk at offset ${offset} lacks its sha256 (required in resumable uploads)`);
    if (chunk.sha256) {
      const actual = createHash('sha256').update(data).digest();
      if (!actual.equals(chunk.sha256)) {
        throw new UploadIntegrityError(
          `${label}: chunk at offset ${offset} (${data.byteLength} bytes) fails its SHA-256 check (data hashes to ${actual.toString('hex')}, the chunk says ${hex(chunk.sha256)}); it was discarded, resume at offset ${offset}`,
          false,
        );
      }
    }
    // A resumable upload may see bytes it already holds again (a replayed chunk, or a client that
    // resumed from an older acknowledgement): identical bytes are skipped, never counted twice.
    const overlap = Math.min(end, t.received) - offset;
    if (overlap > 0 && !Buffer.from(t.bytes.buffer, t.bytes.byteOffset + offset, overlap).equals(Buffer.from(data.buffer, data.byteOffset, overlap))) {
      throw bad(`${label}: chunk at offset ${offset} differs from the ${overlap} bytes already received there: an upload id must carry one update; start a new upload`);
    }
    const fresh = overlap > 0 ? data.subarray(overlap) : data;
    if (end === t.bytes.length && end > t.received) {
      if (!chunk.tensorSha256 && this.requireHashes) throw bad(`${label}: its last chunk (offset ${offset}) lacks tensorSha256 (required in resumable uploads)`);
      if (chunk.tensorSha256) {
        const whole = t.hash.copy().update(fresh).digest();
        if (!whole.equals(chunk.tensorSha256)) {
          throw new UploadIntegrityError(
            `${label}: the ${t.bytes.length} bytes received hash to ${whole.toString('hex')}, the last chunk (offset ${offset}) says ${hex(chunk.tensorSha256)}; the upload was discarded, start it again from offset 0`,
            true,
          );
        }
      }
    } else if (chunk.tensorSha256 && end !== t.bytes.length) {
      throw bad(`${label}: tensorSha256 belongs on the tensor's last chunk, found on the chunk at offset ${offset} (ends at ${end} of ${t.bytes.length})`);
    }
    if (end <= t.received) return;
    t.bytes.set(fresh, t.received);
    t.hash.update(fresh);
    t.received = end;
  }

  /** True when every tensor is complete. */
  get complete(): boolean {
    for (const t of this.tensors.values()) if (t.received !== t.bytes.length) return false;
    return true;
  }

  /** Verified bytes per tensor, in layout order. */
  progress(): Array<{ name: string; receivedBytes: number; totalBytes: number }> {
    return [...this.tensors].map(([name, t]) => ({ name, receivedBytes: t.received, totalBytes: t.bytes.length }));
  }

  /** Bytes received over all tensors. */
  get receivedBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.received;
    return n;
  }

  /** The update's tensors (views over the session's buffers); throws if anything is missing. */
  finish(): NamedTensors {
    const out: NamedTensors = new Map();
    for (const [name, t] of this.tensors) {
      if (t.received !== t.bytes.length) {
        throw bad(`upload ended before all its bytes arrived: tensor ${JSON.stringify(name.slice(0, 80))} has ${t.received} of ${t.bytes.length} bytes (a resumable upload keeps them: ask UploadStatus and resume)`);
      }
      out.set(name, { shape: [...t.shape], data: new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4) });
    }
    return out;
  }
}
