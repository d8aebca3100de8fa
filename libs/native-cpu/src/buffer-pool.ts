/**
 * Recycling of kernel output buffers. Every step of training allocates and drops hundreds of MB of
 * Float32Arrays; V8 answers each ~64 MB of new ArrayBuffer memory with a full mark-compact GC
 * (about 12 per step of a 4-layer model, 10-15% of the step). The pool hands a disposed tensor's
 * buffer to the next kernel that needs the same size instead.
 *
 * A buffer is recycled only when it is provably private: we allocated it, exactly one tensor's
 * storage ever held it (the cpu backend's `data.set` is watched, so a second owner or a subarray
 * view marks it shared), nothing read it out (`readSync`/`read` return the live array, so a reader
 * could keep it), and the backend deleted that storage (refCount reached 0). Pooled buffers are
 * not zeroed: every native kernel writes all of its output.
 */

/** Options for the pool. */
export interface BufferPoolOptions {
  /** Most bytes held while unused (default 1 GiB). */
  maxBytes?: number;
  /** Smallest buffer worth pooling, in elements (default 16384). */
  minElements?: number;
}

interface Tracked {
  array: Float32Array;
  owners: number;
  shared: boolean;
}

interface CpuBackendInternals {
  data: {
    set(dataId: object, value: { values?: unknown }): void;
    get(dataId: object): { values?: unknown } | undefined;
    has(dataId: object): boolean;
  };
  disposeData(dataId: object, force?: boolean): boolean;
  readSync(dataId: object): unknown;
  read(dataId: object): Promise<unknown>;
  dispose(): void;
}

const tracked = new WeakMap<ArrayBufferLike, Tracked>();
const free = new Map<number, Float32Array[]>();
let freeBytes = 0;
let maxBytes = 1 << 30;
let minElements = 16384;
let enabled = false;
let restore: (() => void) | null = null;
const stats = { allocated: 0, reused: 0, recycled: 0, shared: 0 };

/** A Float32Array of n elements, recycled when possible; contents are unspecified. */
export function allocF32(n: number): Float32Array {
  if (!enabled || n < minElements) return new Float32Array(n);
  const list = free.get(n);
  const reused = list?.pop();
  if (reused) {
    freeBytes -= reused.byteLength;
    stats.reused++;
    tracked.set(reused.buffer, { array: reused, owners: 0, shared: false });
    return reused;
  }
  const array = new Float32Array(n);
  stats.allocated++;
  tracked.set(array.buffer, { array, owners: 0, shared: false });
  return array;
}

function markShared(values: unknown): void {
  if (!ArrayBuffer.isView(values)) return;
  const t = tracked.get(values.buffer);
  if (t && !t.shared) {
    t.shared = true;
    stats.shared++;
  }
}

function recycle(values: unknown): void {
  if (!(values instanceof Float32Array)) return;
  const t = tracked.get(values.buffer);
  if (!t || t.shared || t.array !== values || t.owners !== 1) return;
  tracked.delete(values.buffer);
  if (freeBytes + values.byteLength > maxBytes) return;
  const list = free.get(values.length) ?? [];
  list.push(values);
  free.set(values.length, list);
  freeBytes += values.byteLength;
  stats.recycled++;
}

/** Starts recycling for the given cpu backend instance (idempotent); returns false if it cannot. */
export function enableBufferPool(backend: unknown, options: BufferPoolOptions = {}): boolean {
  if (enabled) return true;
  const b = backend as Partial<CpuBackendInternals> | null;
  if (!b || !b.data || typeof b.data.set !== 'function' || typeof b.disposeData !== 'function' || typeof b.readSync !== 'function') {
    return false;
  }
  const be = b as CpuBackendInternals;
  maxBytes = options.maxBytes ?? maxBytes;
  minElements = options.minElements ?? minElements;
  const data = be.data;
  const { set, get } = data;
  const { disposeData, readSync, read, dispose } = be;
  data.set = function (dataId, value) {
    const v = value?.values;
    if (ArrayBuffer.isView(v)) {
      const t = tracked.get(v.buffer);
      if (t) {
        if (t.array !== v) markShared(v);
        else if (++t.owners > 1) markShared(v);
      }
    }
    return set.call(this, dataId, value);
  };
  be.disposeData = function (dataId, force) {
    const values = get.call(data, dataId)?.values;
    const result = disposeData.call(this, dataId, force);
    if (values !== undefined && !data.has(dataId)) recycle(values);
    return result;
  };
  be.readSync = function (dataId) {
    markShared(get.call(data, dataId)?.values);
    return readSync.call(this, dataId);
  };
  be.read = function (dataId) {
    markShared(get.call(data, dataId)?.values);
    return read.call(this, dataId);
  };
  be.dispose = function () {
    disableBufferPool();
    return dispose.call(this);
  };
  restore = () => {
    data.set = set;
    be.disposeData = disposeData;
    be.readSync = readSync;
    be.read = read;
    be.dispose = dispose;
  };
  enabled = true;
  return true;
}

/** Stops recycling, restores the backend's methods and drops pooled buffers. */
export function disableBufferPool(): void {
  restore?.();
  restore = null;
  enabled = false;
  free.clear();
  freeBytes = 0;
}

/** Counters since start: buffers allocated, reused from the pool, returned to it, marked shared. */
export function bufferPoolStats(): { allocated: number; reused: number; recycled: number; shared: number; freeBytes: number } {
  return { ...stats, freeBytes };
}
