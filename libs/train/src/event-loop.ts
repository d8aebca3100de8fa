/**
 * Lets timers and I/O run between training steps. Awaiting tfjs's `data()` resolves through
 * microtasks only, so a training loop never gives the event loop a turn on its own: heartbeats,
 * gRPC calls and, in a simulation, the coordinator sharing the process would starve until it ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
