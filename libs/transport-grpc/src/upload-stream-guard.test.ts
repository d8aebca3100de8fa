import { describe, expect, it } from 'vitest';
import { FederationError } from '@fedlora/federation';
import { UploadDeadlineError, guardStream } from './upload-stream-guard.js';

/** A source that yields `items`, then never ends (a client that keeps the stream open). */
async function* openEnded<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
  await new Promise(() => undefined);
}

async function drain<T>(it: AsyncIterable<T>): Promise<{ got: T[]; err?: Error }> {
  const got: T[] = [];
  try {
    for await (const x of it) got.push(x);
    return { got };
  } catch (err) {
    return { got, err: err as Error };
  }
}

describe('guardStream', () => {
  it('passes a stream that ends through unchanged', async () => {
    async function* three(): AsyncGenerator<number> {
      yield* [1, 2, 3];
    }
    expect(await drain(guardStream(three(), { idleMs: 10_000, maxMs: 10_000 }).messages)).toEqual({ got: [1, 2, 3] });
  });

  it('ends a stream that goes silent with an UploadDeadlineError naming the idle limit', async () => {
    const r = await drain(guardStream(openEnded([1, 2]), { idleMs: 50, maxMs: 60_000 }).messages);
    expect(r.got).toEqual([1, 2]);
    expect(r.err).toBeInstanceOf(UploadDeadlineError);
    expect(r.err!.message).toMatch(/^no upload message for 50 ms/);
  });

  it('ends a stream that stays open past its total limit even while messages keep coming', async () => {
    async function* trickle(): AsyncGenerator<number> {
      for (let i = 0; ; i++) {
        await new Promise((r) => setTimeout(r, 5));
        yield i;
      }
    }
    const r = await drain(guardStream(trickle(), { idleMs: 60_000, maxMs: 100 }).messages);
    expect(r.err).toBeInstanceOf(UploadDeadlineError);
    expect(r.err!.message).toMatch(/open for more than 100 ms/);
  });

  it('ends the stream with the reason given from outside (a newer stream, a closed round)', async () => {
    const g = guardStream(openEnded([1]), { idleMs: 60_000, maxMs: 60_000 });
    const done = drain(g.messages);
    await new Promise((r) => setTimeout(r, 10));
    g.end(new FederationError('failed-precondition', 'round 1 closed'));
    expect(await done).toMatchObject({ got: [1], err: { code: 'failed-precondition', message: 'round 1 closed' } });
  });
});
