import { describe, expect, it } from 'vitest';
import { ChunkStreamError, TensorAssembler, chunkTensors } from './chunking.js';
import type { NamedTensors } from './named-tensors.js';

const GRPC_DEFAULT_LIMIT = 4 * 1024 * 1024;

function bigAdapter(): NamedTensors {
  // 6 MiB in one tensor: more than gRPC's default 4 MiB message limit.
  const data = new Float32Array((6 * 1024 * 1024) / 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i);
  return new Map([
    ['big', { shape: [1536, 1024], data }],
    ['small', { shape: [3], data: new Float32Array([1, 2, 3]) }],
    ['empty', { shape: [0], data: new Float32Array(0) }],
  ]);
}

describe('chunkTensors', () => {
  it('splits a tensor larger than 4 MiB into chunks each below the limit', () => {
    const chunks = [...chunkTensors(bigAdapter())];
    expect(chunks.every((c) => c.data.byteLength <= GRPC_DEFAULT_LIMIT / 2)).toBe(true);
    expect(chunks.filter((c) => c.tensorName === 'big').length).toBe(6);
  });

  it('round-trips through the assembler bit for bit', () => {
    const src = bigAdapter();
    const asm = new TensorAssembler([...src].map(([name, t]) => ({ name, shape: t.shape })));
    for (const c of chunkTensors(src, 64 * 1024)) asm.add({ ...c, data: new Uint8Array(c.data) });
    const out = asm.finish();
    expect([...out.keys()]).toEqual(['big', 'small', 'empty']);
    expect(Buffer.compare(Buffer.from(out.get('big')!.data.buffer), Buffer.from(src.get('big')!.data.buffer))).toBe(0);
    expect(Array.from(out.get('small')!.data)).toEqual([1, 2, 3]);
  });

  it('resumes from per-tensor offsets: an interrupted transfer completes bit for bit with nothing resent', () => {
    const src = bigAdapter();
    const asm = new TensorAssembler([...src].map(([name, t]) => ({ name, shape: t.shape })));
    const all = [...chunkTensors(src, 1 << 20)];
    for (const c of all.slice(0, 3)) asm.add({ ...c, data: new Uint8Array(c.data) }); // cut after 3 MiB of "big"
    expect(asm.progress()).toEqual([
      { name: 'big', receivedBytes: 3 << 20, totalBytes: 6 << 20 },
      { name: 'small', receivedBytes: 0, totalBytes: 12 },
      { name: 'empty', receivedBytes: 0, totalBytes: 0 },
    ]);
    const rest = [...chunkTensors(src, 1 << 20, new Map([['big', 3 << 20], ['empty', 0]]))];
    expect(rest.map((c) => [c.tensorName, c.offset])).toEqual([['big', 3 << 20], ['big', 4 << 20], ['big', 5 << 20], ['small', 0]]);
    for (const c of rest) asm.add({ ...c, data: new Uint8Array(c.data) });
    expect(Buffer.compare(Buffer.from(asm.finish().get('big')!.data.buffer), Buffer.from(src.get('big')!.data.buffer))).toBe(0);
  });

  it('rejects a chunk size that is not a positive multiple of 4', () => {
    expect(() => [...chunkTensors(bigAdapter(), 6)]).toThrow(RangeError);
  });
});

describe('TensorAssembler', () => {
  const layout = [{ name: 'w', shape: [4] }];
  const bytes = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);

  it('refuses a chunk for a tensor that was not announced', () => {
    const asm = new TensorAssembler(layout);
    expect(() => asm.add({ tensorName: 'x', offset: 0, totalBytes: 16, data: bytes })).toThrow(/unknown tensor "x"/);
  });

  it('refuses a gap in the offsets', () => {
    const asm = new TensorAssembler(layout);
    expect(() => asm.add({ tensorName: 'w', offset: 8, totalBytes: 16, data: bytes.subarray(8) })).toThrow(/offset 8, expected 0/);
  });

  it('refuses a chunk that overruns the announced size', () => {
    const asm = new TensorAssembler(layout);
    expect(() => asm.add({ tensorName: 'w', offset: 0, totalBytes: 16, data: new Uint8Array(20) })).toThrow(ChunkStreamError);
  });

  it('refuses to finish an incomplete tensor', () => {
    const asm = new TensorAssembler(layout);
    asm.add({ tensorName: 'w', offset: 0, totalBytes: 16, data: bytes.subarray(0, 8) });
    expect(asm.complete).toBe(false);
    expect(() => asm.finish()).toThrow(/incomplete: received 8 of 16 bytes/);
  });
});
