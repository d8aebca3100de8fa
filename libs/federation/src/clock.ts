import { onAbort } from './abort-waiters.js';

/** Time as a parameter (STYLE.md 5): protocol logic never reads the wall clock directly. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      const unsubscribe = signal ? onAbort(signal, done) : () => {};
      function done(): void {
        clearTimeout(t);
        unsubscribe();
        resolve();
      }
    }),
};

/** Structured event sink (pino-compatible shape: one object per event with an `event` field). */
export interface EventLogger {
  info(fields: Record<string, unknown> & { event: string }): void;
  warn(fields: Record<string, unknown> & { event: string }): void;
  error(fields: Record<string, unknown> & { event: string }): void;
}

/** A logger that drops everything (tests, quiet library use). */
export const silentLogger: EventLogger = { info: () => {}, warn: () => {}, error: () => {} };
