/**
 * The safetensors container (https://github.com/huggingface/safetensors, "Format"):
 * 8-byte little-endian header length N, N bytes of JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`,
 * then the raw little-endian tensor bytes. Offsets are relative to the end of the header.
 *
 * Everything is read into float32 (F16 and BF16 are upcast exactly); writing supports F32, F16
 * and BF16 (round-to-nearest-even).
 */
import type { HostTensor, NamedTensors } from './named-tensors.js';
import { sizeOf } from './named-tensors.js';

/** Element types this reader accepts. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** A safetensors file that cannot be read; the message names the file and what is wrong. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** One tensor's header entry, before its data is decoded. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** The parsed header of a safetensors buffer. */
export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  dataStart: number;
}

/** Parses and validates the header; `file` names the source in error messages. */
export function readSafetensorsHeader(bytes: Uint8Array, file = '<buffer>'): SafetensorsHeader {
  if (bytes.length < 8) throw new SafetensorsError(`${file}: truncated safetensors file (${bytes.length} bytes, need at least 8)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > bytes.length - 8) {
    throw new SafetensorsError(`${file}: truncated safetensors file (header claims ${n} bytes, only ${bytes.length - 8} follow)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (err) {
    throw new SafetensorsError(`${file}: corrupt safetensors header (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(`${file}: corrupt safetensors header (expected a JSON object)`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) {
      throw new SafetensorsError(`${file}: tensor "${name}" has a malformed header entry ${JSON.stringify(raw)}`);
    }
    const [begin, end] = e.data_offsets as number[];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin! < 0 || end! < begin!) {
      throw new SafetensorsError(`${file}: tensor "${name}" has invalid data_offsets [${e.data_offsets.join(', ')}]`);
    }
    if (end! > dataLen) {
      throw new SafetensorsError(`${file}: truncated safetensors file (tensor "${name}" ends at byte ${end}, data section has ${dataLen})`);
    }
    entries.set(name, { dtype: e.dtype, shape: (e.shape as number[]).map(Number), begin: begin!, end: end! });
  }
  return { entries, metadata, dataStart };
}

/** Decodes one entry of a parsed buffer to float32. */
export function decodeSafetensorsEntry(bytes: Uint8Array, header: SafetensorsHeader, name: string, file = '<buffer>'): HostTensor {
  const e = header.entries.get(name);
  if (!e) throw new SafetensorsError(`${file}: no tensor named "${name}"`);
  if (!(e.dtype in BYTES)) {
    throw new SafetensorsError(`${file}: tensor "${name}" has dtype ${e.dtype}, expected one of F32, F16, BF16`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  const count = sizeOf(e.shape);
  if (e.end - e.begin !== count * BYTES[dtype]) {
    throw new SafetensorsError(
      `${file}: tensor "${name}" of shape [${e.shape.join(', ')}] and dtype ${dtype} needs ${count * BYTES[dtype]} bytes, header gives ${e.end - e.begin}`,
    );
  }
  const off = bytes.byteOffset + header.dataStart + e.begin;
  const view = new DataView(bytes.buffer, off, e.end - e.begin);
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  } else {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) u[i] = view.getUint16(2 * i, true) << 16;
  }
  return { shape: [...e.shape], data: out };
}

/** Reads every tensor of a safetensors buffer as float32, in header order. */
export function parseSafetensors(bytes: Uint8Array, file = '<buffer>'): { tensors: NamedTensors; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(bytes, file);
  const tensors: NamedTensors = new Map();
  for (const name of header.entries.keys()) tensors.set(name, decodeSafetensorsEntry(bytes, header, name, file));
  return { tensors, metadata: header.metadata };
}

/** Serialises named tensors (insertion order) to a safetensors buffer in the given dtype. */
export function serializeSafetensors(tensors: NamedTensors, opts: { dtype?: SafetensorsDtype; metadata?: Record<string, string> } = {}): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  if (!(dtype in BYTES)) throw new RangeError(`serializeSafetensors: dtype must be F32, F16 or BF16, received ${String(dtype)}`);
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = sizeOf(t.shape);
    if (n !== t.data.length) throw new RangeError(`serializeSafetensors: tensor "${name}" has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + n * BYTES[dtype]] };
    offset += n * BYTES[dtype];
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' '; // align data to 8 bytes, as the reference writer does
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let p = 8 + headerBytes.length;
  for (const t of tensors.values()) {
    if (dtype === 'F32') {
      for (let i = 0; i < t.data.length; i++, p += 4) view.setFloat32(p, t.data[i]!, true);
    } else if (dtype === 'F16') {
      for (let i = 0; i < t.data.length; i++, p += 2) view.setUint16(p, floatToHalf(t.data[i]!), true);
    } else {
      for (let i = 0; i < t.data.length; i++, p += 2) view.setUint16(p, floatToBfloat16(t.data[i]!), true);
    }
  }
  return out;
}

/** IEEE 754 binary16 bits to a number (exact). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A number to IEEE 754 binary16 bits, round-to-nearest-even, overflow to infinity. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is the correct rounding
  return sign | h;
}

/** A number to bfloat16 bits (upper half of float32), round-to-nearest-even. */
export function floatToBfloat16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}
