/**
 * Deadlines of one upload stream on the coordinator (#16 finding 4). An upload holds memory for a
 * whole update from its header on; a client that sends a header and then nothing (or trickles
 * chunks) must not hold it for ever. The stream is ended when no message arrived for `idleMs`, or
 * when it has been open for `maxMs` in all, and whoever else owns the upload (the registry, when a
 * newer stream replaces it or its round closes) can end it with a reason.
 */

/** An upload stream ended by the coordinator for being idle or too long (gRPC DEADLINE_EXCEEDED: the client may retry). */
export class UploadDeadlineError extends Error {
  override name = 'UploadDeadlineError';
}

/** Default: a stream with no message for a minute is dropped. */
export const DEFAULT_UPLOAD_IDLE_MS = 60_000;
/** Default: no upload stream stays open longer than 15 minutes. */
export const DEFAULT_UPLOAD_STREAM_MAX_MS = 15 * 60_000;

/** A message source with deadlines; `end(err)` stops it from outside (the iteration throws `err`). */
export interface GuardedStream<T> {
  messages: AsyncIterable<T>;
  end(err: Error): void;
}

/** Wraps `source` (a grpc-js request stream) so its iteration throws when a deadline passes or `end` is called. */
export function guardStream<T>(source: AsyncIterable<T>, o: { idleMs: number; maxMs: number }): GuardedStream<T> {
  let stop: (err: Error) => void = () => undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    stop = reject;
  });
  stopped.catch(() => undefined); // observed by the iteration, if it is still running
  let idle: NodeJS.Timeout | undefined;
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => stop(new UploadDeadlineError(`no upload message for ${o.idleMs} ms: the stream was closed and its buffers freed; upload again`)), o.idleMs);
  };
  let total: NodeJS.Timeout | undefined;
  async function* messages(): AsyncGenerator<T> {
    const it = source[Symbol.asyncIterator]();
    total = setTimeout(() => stop(new UploadDeadlineError(`the upload stream was open for more than ${o.maxMs} ms: it was closed and its buffers freed; upload again`)), o.maxMs);
    armIdle();
    try {
      for (;;) {
        const r = await Promise.race([it.next(), stopped]);
        if (r.done) return;
        armIdle();
        yield r.value;
      }
    } finally {
      clearTimeout(idle);
      clearTimeout(total);
      void Promise.resolve(it.return?.()).catch(() => undefined);
    }
  }
  return { messages: messages(), end: (err) => stop(err) };
}
