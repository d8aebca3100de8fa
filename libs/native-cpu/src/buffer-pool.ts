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
 *
 * Buffers are pooled by size class (8 classes per octave: capacities are n rounded up to a
 * multiple of 2^(floor(log2 n) - 3)), and a request is served from its class or one of the next
 * eight (up to twice its size), as a view of the first n elements. Exact sizes alone would miss whenever shapes vary from step
 * to step, as they do under DP-SGD's Poisson sampling (a batch of 58 sequences, then 71, ...):
 * every buffer would then be new memory (page faults, zeroing, mark-compact GCs), which made a
 * DP-SGD step about 3x the CPU time of a non-private one of the same mean size. A fresh buffer
 * wastes below 12.5% (its class); a reused one at most half of itself.
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
/** Free buffers by capacity (a size class), each a whole-buffer Float32Array. */
const free = new Map<number, Float32Array[]>();
let freeBytes = 0;
let maxBytes = 1 << 30;
let minElements = 16384;
let enabled = false;
let restore: (() => void) | null = null;
const stats = { allocated: 0, reused: 0, recycled: 0, shared: 0 };

/** The capacity of n's size class: n rounded up to a multiple of 2^(floor(log2 n) - 3) (n >= 16). */
export function sizeClass(n: number): number {
  const step = 2 ** Math.max(0, Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/** The next size class above capacity `cap`. */
function nextClass(cap: number): number {
  return sizeClass(cap + 1);
}

/** A Float32Array of n elements, recycled when possible; contents are unspecified. */
export function allocF32(n: number): Float32Array {
  if (!enabled || n < minElements) return new Float32Array(n);
  let cap = sizeClass(n);
  for (let tries = 0; tries <= 8; tries++, cap = nextClass(cap)) {
    const reused = free.get(cap)?.pop();
    if (!reused) continue;
    freeBytes -= reused.byteLength;
    stats.reused++;
    const array = reused.length === n ? reused : new Float32Array(reused.buffer, 0, n);
    tracked.set(array.buffer, { array, owners: 0, shared: false });
    return array;
  }
  const whole = new Float32Array(sizeClass(n));
  const array = whole.length === n ? whole : new Float32Array(whole.buffer, 0, n);
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
  const whole = values.length * 4 === values.buffer.byteLength ? values : new Float32Array(values.buffer);
  if (freeBytes + whole.byteLength > maxBytes) return;
  const list = free.get(whole.length) ?? [];
  list.push(whole);
  free.set(whole.length, list);
  freeBytes += whole.byteLength;
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
