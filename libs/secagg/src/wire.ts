import { SecAggError } from './errors.js';

/**
 * Low-level strict codec helpers for the message layer: canonical JSON bodies behind a version
 * byte and a type byte, base64 fields with exact lengths, integer and id-list checks. Parsing
 * never trusts a field it has not checked, and errors name the field, never its content.
 */

/** Wire-format version byte; bump on any incompatible change. */
export const WIRE_VERSION = 1;

/** Frames a JSON body: [version][type][utf-8 JSON]. Field order is the construction order, so equal messages give equal bytes. */
export function frameJson(type: number, body: object): Uint8Array {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const out = new Uint8Array(2 + json.length);
  out[0] = WIRE_VERSION;
  out[1] = type;
  out.set(json, 2);
  return out;
}

/** Reads the version and type bytes; throws 'version' / 'format'. */
export function readHeader(bytes: Uint8Array): { type: number } {
  if (!(bytes instanceof Uint8Array)) throw new SecAggError('format', `message must be a Uint8Array, received ${typeof bytes}`);
  if (bytes.length < 2) throw new SecAggError('format', `message too short (${bytes.length} bytes)`);
  if (bytes[0] !== WIRE_VERSION) throw new SecAggError('version', `expected wire version ${WIRE_VERSION}, received ${bytes[0]}`);
  return { type: bytes[1]! };
}

/** Parses the JSON body of a framed message into a record with exactly `keys`. */
export function readJsonBody(bytes: Uint8Array, what: string, keys: readonly string[]): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.subarray(2)).toString('utf8'));
  } catch {
    throw new SecAggError('format', `${what}: body is not valid JSON`);
  }
  return record(v, what, keys);
}

/** Checks that `v` is a plain object with exactly the given keys. */
export function record(v: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SecAggError('format', `${what}: expected an object`);
  const got = Object.keys(v);
  const missing = keys.filter((k) => !(k in v));
  const extra = got.filter((k) => !keys.includes(k));
  if (missing.length || extra.length) {
    throw new SecAggError('format', `${what}: expected fields [${keys.join(', ')}], missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`);
  }
  return v as Record<string, unknown>;
}

/** An integer field in [min, max]. */
export function int(v: unknown, what: string, min = 0, max = 2 ** 32 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new SecAggError('format', `${what}: expected an integer in [${min}, ${max}], received ${typeof v === 'number' ? v : typeof v}`);
  }
  return v;
}

/** A strictly increasing list of ids (canonical form of a set). */
export function idList(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new SecAggError('format', `${what}: expected an array of client ids`);
  const out = v.map((x, i) => int(x, `${what}[${i}]`, 0, 2 ** 31 - 1));
  for (let i = 1; i < out.length; i++) {
    if (out[i]! <= out[i - 1]!) throw new SecAggError('format', `${what}: ids must be strictly increasing (sorted, no duplicates)`);
  }
  return out;
}

/** An array field. */
export function array(v: unknown, what: string, maxLength = 1 << 20): unknown[] {
  if (!Array.isArray(v) || v.length > maxLength) throw new SecAggError('format', `${what}: expected an array of at most ${maxLength} items`);
  return v;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Encodes bytes as standard base64. */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

/** Decodes a base64 field of exactly `length` bytes (canonical encoding only). */
export function unb64(v: unknown, what: string, length: number): Uint8Array {
  if (typeof v !== 'string' || !B64.test(v) || v.length % 4 !== 0) throw new SecAggError('format', `${what}: expected base64`);
  const out = new Uint8Array(Buffer.from(v, 'base64'));
  if (out.length !== length) throw new SecAggError('format', `${what}: expected ${length} bytes, received ${out.length}`);
  if (b64(out) !== v) throw new SecAggError('format', `${what}: non-canonical base64`);
  return out;
}
