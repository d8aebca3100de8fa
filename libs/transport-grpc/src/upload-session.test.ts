import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { FederationError } from '@fedlora/federation';
import { chunksToSend, tensorDigests } from './resumable-upload.js';
import type { HashedChunk } from './serde.js';
import { UploadIntegrityError, UploadSession } from './upload-session.js';

const delta: NamedTensors = new Map([
  ['a', { shape: [10], data: Float32Array.from({ length: 10 }, (_, i) => i + 0.5) }],
  ['empty', { shape: [0], data: new Float32Array(0) }],
  ['b', { shape: [3], data: new Float32Array([7, 8, 9]) }],
]);
const layout = [...delta].map(([name, t]) => ({ name, shape: t.shape }));
const all = (): HashedChunk[] => [...chunksToSend(delta, tensorDigests(delta), { state: 'not-found' }, 16)];

describe('UploadSession', () => {
  it('reassembles a hashed upload bit for bit', () => {
    const s = new UploadSession(layout, true);
    for (const c of all()) s.add(c);
    expect(s.complete).toBe(true);
    const out = s.finish();
    for (const [name, t] of delta) expect(Buffer.from(out.get(name)!.data.buffer, out.get(name)!.data.byteOffset, t.data.byteLength).equals(Buffer.from(t.data.buffer))).toBe(true);
  });

  it('refuses a corrupted chunk as an integrity error naming tensor and offset, and keeps the verified prefix', () => {
    const s = new UploadSession(layout, true);
    const [first, second] = all();
    s.add(first!);
    const corrupted = { ...second!, data: Uint8Array.from(second!.data, (b, i) => (i === 0 ? b ^ 1 : b)) };
    const err = (() => {
      try {
        s.add(corrupted);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(UploadIntegrityError);
    expect((err as UploadIntegrityError).message).toMatch(/tensor "a": chunk at offset 16 \(16 bytes\) fails its SHA-256 check/);
    expect((err as UploadIntegrityError).discardUpload).toBe(false);
    expect(s.progress()[0]).toEqual({ name: 'a', receivedBytes: 16, totalBytes: 40 });
    s.add(second!);
    expect(s.progress()[0]!.receivedBytes).toBe(32);
  });

  it('does not count a replayed chunk twice: skipped when resumable and identical, refused otherwise', () => {
    const s = new UploadSession(layout, true);
    const chunks = all();
    s.add(chunks[0]!);
    s.add(chunks[0]!);
    expect(s.receivedBytes).toBe(16);
    for (const c of chunks.slice(1)) s.add(c);
    expect(Array.from(s.finish().get('a')!.data)).toEqual(Array.from(delta.get('a')!.data));
    const other = new Uint8Array(16).fill(1);
    const s2 = new UploadSession(layout, true);
    s2.add(chunks[0]!);
    expect(() => s2.add({ ...chunks[0]!, data: other, sha256: createHash('sha256').update(other).digest() })).toThrow(/differs from the 16 bytes already received there/);
    const oneShot = new UploadSession(layout, false);
    oneShot.add(chunks[0]!);
    expect(() => oneShot.add(chunks[0]!)).toThrow(/chunk at offset 0 overlaps bytes already received \(expected offset 16\)/);
  });

  it('refuses a tensor whose chunks do not hash to its announced SHA-256, and says to start over', () => {
    const s = new UploadSession(layout, true);
    const chunks = all();
    const lastOfA = chunks.findIndex((c) => c.tensorName === 'a' && c.tensorSha256);
    chunks[lastOfA] = { ...chunks[lastOfA]!, tensorSha256: createHash('sha256').update('other').digest() };
    for (const c of chunks.slice(0, lastOfA)) s.add(c);
    const err = (() => {
      try {
        s.add(chunks[lastOfA]!);
      } catch (e) {
        return e as UploadIntegrityError;
      }
    })();
    expect(err?.discardUpload).toBe(true);
    expect(err?.message).toMatch(/tensor "a": the 40 bytes received hash to [0-9a-f]{64}, the last chunk \(offset 32\) says/);
  });

  it('requires hashes in resumable uploads and checks them in one-shot uploads only when sent', () => {
    const bare = { tensorName: 'b', offset: 0, totalBytes: 12, data: new Uint8Array(new Float32Array([7, 8, 9]).buffer) };
    expect(() => new UploadSession(layout, true).add(bare)).toThrow(/lacks its sha256/);
    expect(() => new UploadSession(layout, true).add({ ...bare, sha256: createHash('sha256').update(bare.data).digest() })).toThrow(/its last chunk \(offset 0\) lacks tensorSha256/);
    const oneShot = new UploadSession(layout, false);
    oneShot.add(bare);
    expect(oneShot.progress()[2]).toEqual({ name: 'b', receivedBytes: 12, totalBytes: 12 });
  });

  it('refuses to finish an incomplete upload, naming what is missing', () => {
    const s = new UploadSession(layout, true);
    s.add(all()[0]!);
    expect(() => s.finish()).toThrow(FederationError);
    expect(() => s.finish()).toThrow(/tensor "a" has 16 of 40 bytes/);
  });
});

describe('chunksToSend', () => {
  it('resumes each tensor at the acknowledged offset and skips whole ones', () => {
    const rest = [...chunksToSend(delta, tensorDigests(delta), { state: 'in-progress', tensors: [{ name: 'a', receivedBytes: 24, totalBytes: 40 }, { name: 'empty', receivedBytes: 0, totalBytes: 0 }, { name: 'b', receivedBytes: 0, totalBytes: 12 }] }, 16)];
    expect(rest.map((c) => [c.tensorName, c.offset, c.data.byteLength, !!c.tensorSha256])).toEqual([
      ['a', 24, 16, true],
      ['b', 0, 12, true],
    ]);
    const s = new UploadSession(layout, true);
    for (const c of all().filter((c) => c.tensorName === 'a' && c.offset < 24)) s.add(c);
    // 16-byte chunks: the acknowledged offset (16) is where the resumed stream starts.
    for (const c of chunksToSend(delta, tensorDigests(delta), { state: 'in-progress', tensors: s.progress() }, 16)) s.add(c);
    expect(s.complete).toBe(true);
  });
});
