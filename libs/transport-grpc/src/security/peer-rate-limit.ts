/**
 * Per-peer limit on failed signature checks: a token bucket per peer (its mTLS certificate name,
 * or its IP address without one) that each signature which does not verify empties by one, and
 * that refills at a steady rate. While a peer's bucket is empty its requests are refused before
 * any signature is checked, so a flood of forged requests costs the coordinator a map lookup
 * each, not an Ed25519 verification (#16 finding 5). Honest clients never produce a failing
 * signature, so they never touch their bucket; a peer cannot empty another peer's bucket because
 * the key is what the TLS layer (or the network) says it is, never what the request claims.
 */

/** Options of `SignatureFailureLimiter`. */
export interface SignatureFailureLimiterOptions {
  /** Failed checks a peer may make in a burst before it is throttled (default 10). */
  burst?: number;
  /** Failed checks per second a throttled peer regains (default 1). */
  refillPerSecond?: number;
  /** Peers remembered at most (default 10,000); the least recently failed are forgotten first. */
  maxPeers?: number;
  /** Monotonic clock, ms (default performance.now). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Counts failed signature checks per peer and says when a peer must wait. */
export class SignatureFailureLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly refill: number;
  private readonly maxPeers: number;
  private readonly now: () => number;

  constructor(options: SignatureFailureLimiterOptions = {}) {
    this.burst = options.burst ?? 10;
    this.refill = options.refillPerSecond ?? 1;
    this.maxPeers = options.maxPeers ?? 10_000;
    this.now = options.now ?? (() => performance.now());
    if (!(this.burst >= 1)) throw new RangeError(`burst: expected a number >= 1, received ${options.burst}`);
    if (!(this.refill > 0)) throw new RangeError(`refillPerSecond: expected a positive number, received ${options.refillPerSecond}`);
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1) throw new RangeError(`maxPeers: expected an integer >= 1, received ${options.maxPeers}`);
  }

  /** Milliseconds `peer` must wait before its next signature is checked (0: check it now). */
  retryAfterMs(peer: string): number {
    const b = this.current(peer);
    return b === undefined || b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) / this.refill) * 1000);
  }

  /** Records a signature from `peer` that did not verify. */
  recordFailure(peer: string): void {
    const b = this.current(peer) ?? { tokens: this.burst, at: this.now() };
    b.tokens = Math.max(0, b.tokens - 1);
    // Re-insert so the map's order is least recently failed first (eviction order).
    this.buckets.delete(peer);
    this.buckets.set(peer, b);
    if (this.buckets.size > this.maxPeers) this.buckets.delete(this.buckets.keys().next().value!);
  }

  /** Peers currently remembered (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private current(peer: string): Bucket | undefined {
    const b = this.buckets.get(peer);
    if (!b) return undefined;
    const t = this.now();
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.refill);
    b.at = t;
    if (b.tokens >= this.burst) {
      this.buckets.delete(peer); // back to a full bucket: nothing to remember
      return undefined;
    }
    return b;
  }
}
