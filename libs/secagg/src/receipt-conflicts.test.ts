import { describe, expect, it } from 'vitest';
import { resolveRejections } from './receipt-conflicts.js';

const receipts = (entries: Array<[number, number[]]>) => new Map(entries);

describe('resolveRejections', () => {
  it('removes nobody when no share was rejected', () => {
    expect(resolveRejections(receipts([[1, []], [2, []], [3, []]])).size).toBe(0);
  });

  it('removes a sender whose shares several receivers rejected, and only it', () => {
    const r = resolveRejections(receipts([[1, [4]], [2, [4]], [3, [4]], [4, []]]));
    expect([...r.keys()]).toEqual([4]);
    expect(r.get(4)).toMatch(/to client\(s\) 1, 2, 3 did not open/);
  });

  it('removes a receiver that falsely rejects several honest senders, not them', () => {
    const r = resolveRejections(receipts([[1, []], [2, []], [3, []], [4, [1, 2, 3]]]));
    expect([...r.keys()]).toEqual([4]);
    expect(r.get(4)).toMatch(/reported the shares of client\(s\) 1, 2, 3 as not opening/);
  });

  it('on a single rejection removes the rejected sender (one member lost, never the round)', () => {
    expect([...resolveRejections(receipts([[1, [2]], [2, []], [3, []]])).keys()]).toEqual([2]);
  });

  it('names a rejected sender that sent no receipt', () => {
    expect([...resolveRejections(receipts([[1, [3]], [2, [3]]])).keys()]).toEqual([3]);
  });

  it('leaves no rejection between two kept clients', () => {
    const rec = receipts([[1, [2, 5]], [2, [3]], [3, [1]], [4, []], [5, [1]]]);
    const removed = resolveRejections(rec);
    const kept = [...rec.keys()].filter((u) => !removed.has(u));
    for (const r of kept) for (const x of rec.get(r)!) expect(kept.includes(x)).toBe(false);
  });
});
