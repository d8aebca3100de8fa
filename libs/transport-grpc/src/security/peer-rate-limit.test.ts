import { describe, expect, it } from 'vitest';
import { SignatureFailureLimiter } from './peer-rate-limit.js';

describe('SignatureFailureLimiter', () => {
  it('lets a peer fail `burst` times, then asks it to wait until a token refills', () => {
    let t = 0;
    const l = new SignatureFailureLimiter({ burst: 3, refillPerSecond: 2, now: () => t });
    for (let i = 0; i < 3; i++) {
      expect(l.retryAfterMs('p')).toBe(0);
      l.recordFailure('p');
    }
    expect(l.retryAfterMs('p')).toBe(500);
    t += 250;
    expect(l.retryAfterMs('p')).toBe(250);
    t += 250;
    expect(l.retryAfterMs('p')).toBe(0);
    expect(l.retryAfterMs('q')).toBe(0);
  });

  it('forgets a peer whose bucket is full again, and never remembers more than maxPeers', () => {
    let t = 0;
    const l = new SignatureFailureLimiter({ burst: 2, refillPerSecond: 1, maxPeers: 3, now: () => t });
    for (const p of ['a', 'b', 'c', 'd']) l.recordFailure(p);
    expect(l.size).toBe(3);
    t += 5000;
    for (const p of ['b', 'c', 'd']) expect(l.retryAfterMs(p)).toBe(0);
    expect(l.size).toBe(0);
  });

  it('refuses nonsensical settings, naming them', () => {
    expect(() => new SignatureFailureLimiter({ burst: 0 })).toThrow(/burst/);
    expect(() => new SignatureFailureLimiter({ refillPerSecond: 0 })).toThrow(/refillPerSecond/);
    expect(() => new SignatureFailureLimiter({ maxPeers: 1.5 })).toThrow(/maxPeers/);
  });
});
