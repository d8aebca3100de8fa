import type { HostTensor, NamedTensors } from './named-tensors.js';
import { sizeOf } from './named-tensors.js';

/** Default chunk size for streaming tensors: well under gRPC's 4 MiB default message limit. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

/** One piece of one tensor's raw little-endian float32 bytes. */
export interface TensorChunkData {
  tensorName: string;
  offset: number;
  totalBytes: number;
  data: Uint8Array;
}

/**
 * Splits tensors into chunks of at most `chunkBytes` bytes (a multiple of 4), in tensor order.
 * Chunks are views, not copies. An empty tensor yields one empty chunk so its presence is sent.
 * `startAt` (tensor name -> byte offset) resumes a transfer: each tensor starts at its offset, and
 * a tensor already complete yields nothing. The caller validates the offsets (see `resumeOffsets`).
 */
export function* chunkTensors(tensors: NamedTensors, chunkBytes = DEFAULT_CHUNK_BYTES, startAt?: ReadonlyMap<string, number>): Generator<TensorChunkData> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 4 || chunkBytes % 4 !== 0) {
    throw new RangeError(`chunkBytes must be a positive multiple of 4, received ${chunkBytes}`);
  }
  for (const [name, t] of tensors) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const start = startAt?.get(name) ?? 0;
    if (bytes.length === 0) {
      if (!startAt?.has(name)) yield { tensorName: name, offset: 0, totalBytes: 0, data: bytes };
      continue;
    }
    for (let off = start; off < bytes.length; off += chunkBytes) {
      yield { tensorName: name, offset: off, totalBytes: bytes.length, data: bytes.subarray(off, Math.min(off + chunkBytes, bytes.length)) };
    }
  }
}

/** Raised when a chunk stream does not match the announced tensors. */
export class ChunkStreamError extends Error {
  override name = 'ChunkStreamError';
}

/**
 * Reassembles chunks into tensors of an announced layout. Chunks of one tensor must arrive in
 * order (offset == bytes received so far); tensors may arrive in any order. Sizes are checked
 * before anything is copied, so a hostile stream cannot make it allocate beyond the announced layout.
 */
export class TensorAssembler {
  private readonly buffers = new Map<string, { shape: number[]; bytes: Uint8Array; received: number }>();

  constructor(layout: ReadonlyArray<{ name: string; shape: number[] }>) {
    for (const { name, shape } of layout) {
      if (this.buffers.has(name)) throw new ChunkStreamError(`tensor "${name}" announced twice`);
      this.buffers.set(name, { shape: [...shape], bytes: new Uint8Array(sizeOf(shape) * 4), received: 0 });
    }
  }

  /** Adds one chunk; throws ChunkStreamError on an unknown tensor, a gap, an overlap or an overflow. */
  add(chunk: TensorChunkData): void {
    const b = this.buffers.get(chunk.tensorName);
    if (!b) throw new ChunkStreamError(`chunk for unknown tensor "${chunk.tensorName}"`);
    if (chunk.totalBytes !== b.bytes.length) {
      throw new ChunkStreamError(`tensor "${chunk.tensorName}": chunk says ${chunk.totalBytes} bytes in all, expected ${b.bytes.length}`);
    }
    if (chunk.offset !== b.received) {
      throw new ChunkStreamError(`tensor "${chunk.tensorName}": chunk at offset ${chunk.offset}, expected ${b.received}`);
    }
    if (chunk.offset + chunk.data.length > b.bytes.length) {
      throw new ChunkStreamError(`tensor "${chunk.tensorName}": chunk overruns the tensor (${chunk.offset + chunk.data.length} > ${b.bytes.length} bytes)`);
    }
    b.bytes.set(chunk.data, chunk.offset);
    b.received += chunk.data.length;
  }

  /** Bytes received so far per tensor, in layout order: where an interrupted transfer resumes. */
  progress(): Array<{ name: string; receivedBytes: number; totalBytes: number }> {
    return [...this.buffers].map(([name, b]) => ({ name, receivedBytes: b.received, totalBytes: b.bytes.length }));
  }

  /** True when every announced tensor is complete. */
  get complete(): boolean {
    for (const b of this.buffers.values()) if (b.received !== b.bytes.length) return false;
    return true;
  }

  /** The assembled tensors; throws if any is incomplete. */
  finish(): NamedTensors {
    const out: NamedTensors = new Map();
    for (const [name, b] of this.buffers) {
      if (b.received !== b.bytes.length) {
        throw new ChunkStreamError(`tensor "${name}" incomplete: received ${b.received} of ${b.bytes.length} bytes`);
      }
      const t: HostTensor = { shape: b.shape, data: new Float32Array(b.bytes.buffer, b.bytes.byteOffset, b.bytes.length / 4) };
      out.set(name, t);
    }
    return out;
  }
}
