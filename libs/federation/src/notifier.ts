import { onAbort } from './abort-waiters.js';

/**
 * A condition variable for async code: `wait()` resolves at the next `notify()`, or after a
 * timeout. Used to wake long-polling clients and the round loop when state changes.
 */
export class Notifier {
  private waiters = new Set<() => void>();

  /** Wakes every current waiter. */
  notify(): void {
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Resolves at the next notify, after `timeoutMs`, or when `signal` aborts, whichever is first. */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const unsubscribe = signal ? onAbort(signal, done) : () => {};
      this.waiters.add(done);
    });
  }
}
