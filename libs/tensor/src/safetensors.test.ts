import { describe, expect, it } from 'vitest';
import { floatToBfloat16, floatToHalf, halfToFloat, parseSafetensors, SafetensorsError, serializeSafetensors } from './safetensors.js';
import type { NamedTensors } from './named-tensors.js';

function sample(): NamedTensors {
  return new Map([
    ['a.weight', { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 0.25, -0.125]) }],
    ['b', { shape: [1], data: new Float32Array([65504]) }],
  ]);
}

describe('safetensors', () => {
  it('round-trips float32 exactly, keeping names, order and metadata', () => {
    const bytes = serializeSafetensors(sample(), { metadata: { format: 'pt' } });
    const { tensors, metadata } = parseSafetensors(bytes);
    expect([...tensors.keys()]).toEqual(['a.weight', 'b']);
    expect(tensors.get('a.weight')!.shape).toEqual([2, 3]);
    expect([...tensors.get('a.weight')!.data]).toEqual([1, -2, 3.5, 0, 0.25, -0.125]);
    expect(metadata).toEqual({ format: 'pt' });
  });

  it('aligns the data section to 8 bytes like the reference writer', () => {
    const bytes = serializeSafetensors(sample());
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
  });

  it('upcasts F16 and BF16 values that are exactly representable', () => {
    for (const dtype of ['F16', 'BF16'] as const) {
      const { tensors } = parseSafetensors(serializeSafetensors(sample(), { dtype }));
      expect([...tensors.get('a.weight')!.data]).toEqual([1, -2, 3.5, 0, 0.25, -0.125]);
    }
  });

  it('converts half precision with round-to-nearest-even, subnormals and infinities', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(floatToHalf(2 ** -20))).toBe(2 ** -20);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(floatToBfloat16(1)).toBe(0x3f80);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
  });

  it('rejects a truncated file, naming the file and the tensor', () => {
    const bytes = serializeSafetensors(sample());
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 3), 'model.safetensors')).toThrow(
      /model\.safetensors: truncated safetensors file \(tensor "b" ends at byte/,
    );
    expect(() => parseSafetensors(bytes.subarray(0, 20), 'x.safetensors')).toThrow(/x\.safetensors: truncated .*header claims/);
    expect(() => parseSafetensors(new Uint8Array(3), 'y')).toThrow(SafetensorsError);
  });

  it('rejects a corrupt header and an unsupported dtype', () => {
    const bad = new Uint8Array(8 + 4);
    new DataView(bad.buffer).setBigUint64(0, 4n, true);
    bad.set(new TextEncoder().encode('{oops'.slice(0, 4)), 8);
    expect(() => parseSafetensors(bad, 'f.safetensors')).toThrow(/f\.safetensors: corrupt safetensors header/);
    const json = JSON.stringify({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } });
    const buf = new Uint8Array(8 + json.length + 8);
    new DataView(buf.buffer).setBigUint64(0, BigInt(json.length), true);
    buf.set(new TextEncoder().encode(json), 8);
    expect(() => parseSafetensors(buf, 'g.safetensors')).toThrow(/g\.safetensors: tensor "t" has dtype I64, expected one of F32, F16, BF16/);
  });
});
