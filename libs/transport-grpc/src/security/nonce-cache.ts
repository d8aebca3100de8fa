/**
 * Replay protection: a request nonce may be used once until it expires. The verifier talks to a
 * `NonceCache`; the coordinator's store (`FederationStore.recordNonce`) is one, so replays are
 * refused across restarts; `MemoryNonceCache` is another, for tests and stateless deployments.
 */

/** Remembers nonces; `recordNonce` returns false for a nonce seen before and not yet expired. */
export interface NonceCache {
  recordNonce(nonce: string, expiresAt: number): boolean;
}

/** Options of the in-memory cache. */
export interface MemoryNonceCacheOptions {
  /** Clock, ms since the epoch (default Date.now). */
  now?: () => number;
  /**
   * Upper bound on remembered nonces (default 1,000,000, about 100 MB). When full, the cache
   * refuses new nonces rather than forgetting live ones, so a flood cannot open a replay window.
   */
  maxEntries?: number;
}

/** An in-memory NonceCache with expiry. */
export class MemoryNonceCache implements NonceCache {
  private readonly seen = new Map<string, number>();
  private readonly now: () => number;
  private readonly maxEntries: number;

  constructor(options: MemoryNonceCacheOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxEntries = options.maxEntries ?? 1_000_000;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new RangeError(`maxEntries: expected an integer >= 1, received ${options.maxEntries}`);
    }
  }

  recordNonce(nonce: string, expiresAt: number): boolean {
    const t = this.now();
    const prev = this.seen.get(nonce);
    if (prev !== undefined && prev > t) return false;
    if (this.seen.size >= this.maxEntries) this.prune(t);
    if (this.seen.size >= this.maxEntries) return false;
    this.seen.set(nonce, expiresAt);
    return true;
  }

  /** Number of nonces currently remembered (expired ones may linger until the next prune). */
  get size(): number {
    return this.seen.size;
  }

  private prune(t: number): void {
    for (const [n, exp] of this.seen) if (exp <= t) this.seen.delete(n);
  }
}
