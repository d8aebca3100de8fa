import { describe, expect, it } from 'vitest';
import { MemoryNonceCache } from './nonce-cache.js';

describe('MemoryNonceCache', () => {
  it('refuses a nonce seen before until it expires', () => {
    let t = 0;
    const cache = new MemoryNonceCache({ now: () => t });
    expect(cache.recordNonce('n', 100)).toBe(true);
    expect(cache.recordNonce('n', 100)).toBe(false);
    t = 100;
    expect(cache.recordNonce('n', 200)).toBe(true);
  });

  it('when full, prunes expired nonces and refuses new ones rather than evicting live ones', () => {
    let t = 0;
    const cache = new MemoryNonceCache({ now: () => t, maxEntries: 2 });
    expect(cache.recordNonce('a', 10)).toBe(true);
    expect(cache.recordNonce('b', 20)).toBe(true);
    expect(cache.recordNonce('c', 20)).toBe(false);
    t = 10;
    expect(cache.recordNonce('c', 30)).toBe(true);
    expect(cache.recordNonce('a', 30)).toBe(false);
  });
});
