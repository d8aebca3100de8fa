/**
 * One `abort` listener per AbortSignal, shared by every concurrent waiter on it.
 *
 * The coordinator's stop signal and the simulator's client-stop signal live for the whole run
 * and are shared by every long-poll, heartbeat sleep and round-loop wait. Adding one listener
 * per wait put 64 concurrent listeners on one signal at `simulate --clients 64` (Node's
 * `MaxListenersExceededWarning ... 11 abort listeners added to [AbortSignal]`) and the count
 * grows with the population. Here a signal carries at most one listener while any wait on it
 * is pending, and none once they have all ended.
 */
const waiters = new WeakMap<AbortSignal, { fire: () => void; fns: Set<() => void> }>();

/**
 * Calls `fn` once if `signal` aborts; returns a function that unsubscribes (call it when the
 * wait ends for another reason). When the last subscriber leaves, the signal's listener is removed.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let entry = waiters.get(signal);
  if (!entry) {
    const fns = new Set<() => void>();
    const fire = (): void => {
      waiters.delete(signal);
      for (const f of fns) f();
      fns.clear();
    };
    entry = { fire, fns };
    waiters.set(signal, entry);
    signal.addEventListener('abort', fire, { once: true });
  }
  const e = entry;
  e.fns.add(fn);
  return () => {
    if (!e.fns.delete(fn) || e.fns.size > 0) return;
    if (waiters.get(signal) === e) waiters.delete(signal);
    signal.removeEventListener('abort', e.fire);
  };
}
