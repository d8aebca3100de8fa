import { createHash } from 'node:crypto';

/** A float32 tensor that lives in ordinary (host) memory, row-major. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Tensors by name, in a stable order (insertion order of the Map). */
export type NamedTensors = Map<string, HostTensor>;

/** Number of elements a shape holds. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`shape entries must be non-negative integers, received [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Builds a HostTensor, checking that the data fits the shape. */
export function hostTensor(shape: number[], data: Float32Array): HostTensor {
  const n = sizeOf(shape);
  if (data.length !== n) throw new RangeError(`tensor of shape [${shape.join(', ')}] needs ${n} values, received ${data.length}`);
  return { shape: [...shape], data };
}

/** Deep copy (new buffers) of a set of named tensors. */
export function cloneNamed(t: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [k, v] of t) out.set(k, { shape: [...v.shape], data: new Float32Array(v.data) });
  return out;
}

/** Total element count across tensors. */
export function numElements(t: NamedTensors): number {
  let n = 0;
  for (const v of t.values()) n += v.data.length;
  return n;
}

/** Throws a RangeError naming the first tensor that differs in name or shape from the reference. */
export function assertSameLayout(reference: NamedTensors, other: NamedTensors, what = 'tensors'): void {
  if (reference.size !== other.size) {
    throw new RangeError(`${what}: expected ${reference.size} tensors, received ${other.size}`);
  }
  for (const [name, ref] of reference) {
    const o = other.get(name);
    if (!o) throw new RangeError(`${what}: missing tensor "${name}"`);
    if (o.shape.length !== ref.shape.length || o.shape.some((d, i) => d !== ref.shape[i])) {
      throw new RangeError(`${what}: tensor "${name}" has shape [${o.shape.join(', ')}], expected [${ref.shape.join(', ')}]`);
    }
  }
}

/** Index of the first non-finite value in any tensor, or undefined if all are finite. */
export function findNonFinite(t: NamedTensors): { name: string; index: number } | undefined {
  for (const [name, v] of t) {
    const d = v.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return { name, index: i };
  }
  return undefined;
}

/**
 * SHA-256 over a canonical encoding: tensors sorted by name, each as
 * name, NUL, shape as decimal joined by ",", NUL, then its little-endian float32 bytes.
 */
export function sha256Named(t: NamedTensors): string {
  const h = createHash('sha256');
  for (const name of [...t.keys()].sort()) {
    const v = t.get(name)!;
    h.update(`${name}\0${v.shape.join(',')}\0`);
    h.update(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
  }
  return h.digest('hex');
}

/** a - b, element-wise, for tensors of the same layout. */
export function subtractNamed(a: NamedTensors, b: NamedTensors): NamedTensors {
  assertSameLayout(a, b);
  const out: NamedTensors = new Map();
  for (const [k, va] of a) {
    const vb = b.get(k)!.data;
    const d = new Float32Array(va.data.length);
    for (let i = 0; i < d.length; i++) d[i] = va.data[i]! - vb[i]!;
    out.set(k, { shape: [...va.shape], data: d });
  }
  return out;
}

/** a + s * b, element-wise, for tensors of the same layout. */
export function addScaledNamed(a: NamedTensors, b: NamedTensors, s = 1): NamedTensors {
  assertSameLayout(a, b);
  const out: NamedTensors = new Map();
  for (const [k, va] of a) {
    const vb = b.get(k)!.data;
    const d = new Float32Array(va.data.length);
    for (let i = 0; i < d.length; i++) d[i] = va.data[i]! + s * vb[i]!;
    out.set(k, { shape: [...va.shape], data: d });
  }
  return out;
}

/** Global L2 norm across all tensors (accumulated in float64). */
export function l2NormNamed(t: NamedTensors): number {
  let s = 0;
  for (const v of t.values()) for (let i = 0; i < v.data.length; i++) s += v.data[i]! * v.data[i]!;
  return Math.sqrt(s);
}
