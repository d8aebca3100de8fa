/**
 * The byte form of a server optimizer's state, committed with each checkpoint (libs/store keeps
 * it opaque): a little-endian uint32 header length, a UTF-8 JSON header {name, step, tensors:
 * [[name, length], ...]}, then for each tensor its first moments and then its second moments as
 * little-endian float64. Float64 bytes round-trip exactly, so a resumed FedAdam continues with
 * bit-identical moments.
 */
import type { StrategyState } from './strategy.js';

interface Header {
  name: string;
  step: number;
  tensors: Array<[string, number]>;
}

/** Serialises `state` (see the module comment for the layout). */
export function encodeStrategyState(state: StrategyState): Uint8Array {
  const entries = Object.entries(state.moments ?? {});
  const header: Header = { name: state.name, step: state.step, tensors: entries.map(([k, { m }]) => [k, m.length]) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const values = entries.reduce((n, [, { m }]) => n + 2 * m.length, 0);
  const out = Buffer.alloc(4 + json.length + 8 * values);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  let at = 4 + json.length;
  for (const [, { m, v }] of entries) {
    for (const a of [m, v]) for (let i = 0; i < a.length; i++, at += 8) out.writeDoubleLE(a[i]!, at);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Parses what `encodeStrategyState` wrote; throws RangeError naming what is wrong. */
export function decodeStrategyState(bytes: Uint8Array): StrategyState {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4) throw new RangeError(`server optimizer state: expected at least 4 bytes, received ${buf.length}`);
  const headerLength = buf.readUInt32LE(0);
  if (4 + headerLength > buf.length) throw new RangeError(`server optimizer state: header of ${headerLength} bytes overruns the ${buf.length} bytes`);
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8')) as Header;
  } catch (err) {
    throw new RangeError(`server optimizer state: the header is not JSON (${(err as Error).message})`);
  }
  if (typeof header?.name !== 'string' || !Number.isInteger(header.step) || !Array.isArray(header.tensors)) {
    throw new RangeError('server optimizer state: the header lacks name, step or tensors');
  }
  const values = header.tensors.reduce((n, [, len]) => n + 2 * len, 0);
  if (buf.length !== 4 + headerLength + 8 * values) {
    throw new RangeError(`server optimizer state: expected ${4 + headerLength + 8 * values} bytes for the tensors the header lists, received ${buf.length}`);
  }
  let at = 4 + headerLength;
  const read = (len: number): Float64Array => {
    const a = new Float64Array(len);
    for (let i = 0; i < len; i++, at += 8) a[i] = buf.readDoubleLE(at);
    return a;
  };
  if (header.tensors.length === 0) return { name: header.name, step: header.step };
  const moments: Record<string, { m: Float64Array; v: Float64Array }> = {};
  for (const [name, len] of header.tensors) {
    const m = read(len);
    moments[name] = { m, v: read(len) };
  }
  return { name: header.name, step: header.step, moments };
}
