import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { UpdateHeader } from '@fedlora/federation';
import { UploadRegistry } from './upload-registry.js';

const layout = [{ name: 'w', shape: [256] }]; // 1 KiB
const header = (clientId: string, over: Partial<UpdateHeader> = {}): UpdateHeader => ({ clientId, round: 1, nonce: 'n1', numExamples: 5, trainLoss: 1, tensors: layout, metrics: {}, ...over });
const ID = 'upload-id-0000000001';

function registry(maxBytes = 4096) {
  const live = { round: 1, nonce: 'n1' };
  let t = 0;
  const reg = new UploadRegistry({ maxBytes, isLive: (r, n) => r === live.round && n === live.nonce, now: () => ++t });
  return { reg, live };
}

function attached(reg: UploadRegistry, h: UpdateHeader, id = ID) {
  const a = reg.attach(h, id, layout);
  if (a.completed) throw new Error('unexpected completed upload');
  return a;
}

describe('UploadRegistry', () => {
  it('resumes the same upload id with its verified prefix; a stale stream may no longer append', () => {
    const { reg } = registry();
    const first = attached(reg, header('a'));
    const data = new Uint8Array(512);
    first.session.add({ tensorName: 'w', offset: 0, totalBytes: 1024, data, sha256: createHash('sha256').update(data).digest() });
    const again = attached(reg, header('a'));
    expect(again.session).toBe(first.session);
    expect(again.resumedAt).toBe(512);
    expect(() => reg.checkLease(first.lease)).toThrow(/resumed by a newer stream/);
    expect(() => reg.checkLease(again.lease)).not.toThrow();
    expect(reg.status('a', 1, 'n1', ID)).toEqual({ state: 'in-progress', tensors: [{ name: 'w', receivedBytes: 512, totalBytes: 1024 }] });
    expect(reg.status('a', 1, 'n1', 'another-id-000000000')).toEqual({ state: 'not-found' });
  });

  it('refuses a resume whose header changed (the update would be half one, half another)', () => {
    const { reg } = registry();
    attached(reg, header('a'));
    expect(() => reg.attach(header('a', { numExamples: 6 }), ID, layout)).toThrow(/resumed with a different header/);
  });

  it('answers completed for a delivered upload and refuses another upload id for that round', () => {
    const { reg } = registry();
    const a = attached(reg, header('a'));
    reg.complete(a.lease);
    expect(reg.heldBytes).toBe(0);
    expect(reg.attach(header('a'), ID, layout)).toEqual({ completed: true });
    expect(reg.status('a', 1, 'n1', ID)).toEqual({ state: 'completed' });
    expect(() => reg.attach(header('a'), 'upload-id-0000000002', layout)).toThrow(/already delivered an update for round 1/);
  });

  it('expires uploads when their round attempt closes', () => {
    const { reg, live } = registry();
    attached(reg, header('a'));
    expect(reg.heldBytes).toBe(1024);
    live.nonce = 'n2'; // the round was aborted and rerun under a fresh nonce
    reg.sweep();
    expect(reg.size).toBe(0);
    expect(reg.heldBytes).toBe(0);
    expect(reg.status('a', 1, 'n1', ID)).toEqual({ state: 'not-found' });
  });

  it('bounds memory: evicts the longest-idle detached upload, then refuses with RESOURCE_EXHAUSTED', () => {
    const { reg } = registry(2048);
    const a = attached(reg, header('a'));
    const b = attached(reg, header('b'));
    reg.detach(a.lease);
    attached(reg, header('c')); // a was idle and detached: evicted
    expect(reg.status('a', 1, 'n1', ID)).toEqual({ state: 'not-found' });
    expect(reg.heldBytes).toBe(2048);
    const err = (() => {
      try {
        reg.oneShot(header('d'), layout);
      } catch (e) {
        return e as { code: string; message: string };
      }
    })();
    expect(err?.code).toBe('resource-exhausted');
    expect(err?.message).toMatch(/hold 2048 of 2048 bytes; an update of 1024 bytes does not fit now: retry later/);
    reg.discard(b.lease);
    const one = reg.oneShot(header('d'), layout);
    expect(reg.heldBytes).toBe(2048);
    one.release();
    one.release();
    expect(reg.heldBytes).toBe(1024);
  });

  it('refuses an update larger than the whole bound with the setting to raise', () => {
    const { reg } = registry(512);
    expect(() => reg.attach(header('a'), ID, layout)).toThrow(/exceeds the coordinator's upload memory bound \(512 bytes\): the operator can raise it \(uploads.maxBufferedMB/);
  });

  it('holds one upload per client and round: a newer stream replaces the older one and ends it (#16 finding 4)', () => {
    const { reg } = registry(4096);
    const ended: string[] = [];
    const streams = Array.from({ length: 4 }, (_, i) => reg.oneShot(header('m'), layout, (why) => ended.push(`${i}: ${why.message}`)));
    expect(reg.heldBytes).toBe(1024);
    expect(ended).toEqual([0, 1, 2].map((i) => `${i}: a newer upload stream of client m for round 1 replaced this one (one upload per client and round)`));
    expect(() => reg.checkLease(streams[0]!.lease)).toThrow(/expired or was discarded|newer stream/);
    // The honest client still finds room, and a resumable upload of m replaces m's one-shot too.
    attached(reg, header('h'));
    attached(reg, header('m'));
    expect(ended).toHaveLength(4);
    expect(reg.heldBytes).toBe(2048);
  });

  it('ends the stream of an upload whose round closed, and frees its buffers', () => {
    const { reg, live } = registry();
    const ended: string[] = [];
    reg.oneShot(header('m'), layout, (why) => ended.push(why.code + ': ' + why.message));
    attached(reg, header('a'));
    live.nonce = 'n2';
    reg.sweep();
    expect(reg.heldBytes).toBe(0);
    expect(ended).toEqual(['failed-precondition: round 1 closed (or was rerun) while this upload was open: its buffers were freed']);
  });

  it('refuses a second one-shot upload once the client delivered one for the round, before reserving', () => {
    const { reg } = registry();
    const one = reg.oneShot(header('a'), layout);
    reg.complete(one.lease);
    one.release();
    expect(reg.heldBytes).toBe(0);
    expect(() => reg.oneShot(header('a'), layout)).toThrow(/already delivered an update for round 1$/);
    expect(reg.heldBytes).toBe(0);
  });
});
