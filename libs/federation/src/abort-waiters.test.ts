import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { onAbort } from './abort-waiters.js';
import { systemClock } from './clock.js';
import { Notifier } from './notifier.js';

const listeners = (s: AbortSignal): number => getEventListeners(s, 'abort').length;

describe('abort listeners on a long-lived signal', () => {
  it('many concurrent Notifier waits hold one listener and leave none once notified', async () => {
    const ctl = new AbortController();
    const n = new Notifier();
    const waits = Array.from({ length: 200 }, () => n.wait(60_000, ctl.signal));
    expect(listeners(ctl.signal)).toBe(1);
    n.notify();
    await Promise.all(waits);
    expect(listeners(ctl.signal)).toBe(0);
  });

  it('many sequential timed-out waits and sleeps leave no listener behind', async () => {
    const ctl = new AbortController();
    const n = new Notifier();
    for (let i = 0; i < 50; i++) {
      await n.wait(0, ctl.signal);
      await systemClock.sleep(0, ctl.signal);
    }
    expect(listeners(ctl.signal)).toBe(0);
  });

  it('abort still wakes every pending wait and sleep, then the signal has no listener', async () => {
    const ctl = new AbortController();
    const n = new Notifier();
    const pending = [
      ...Array.from({ length: 30 }, () => n.wait(600_000, ctl.signal)),
      ...Array.from({ length: 30 }, () => systemClock.sleep(600_000, ctl.signal)),
    ];
    expect(listeners(ctl.signal)).toBe(1);
    ctl.abort();
    await Promise.all(pending); // would hang (test timeout) if abort no longer woke the waits
    expect(listeners(ctl.signal)).toBe(0);
  });

  it('a subscription made after the others left re-adds exactly one listener', () => {
    const ctl = new AbortController();
    const offA = onAbort(ctl.signal, () => {});
    offA();
    offA(); // idempotent
    expect(listeners(ctl.signal)).toBe(0);
    let fired = 0;
    onAbort(ctl.signal, () => fired++);
    expect(listeners(ctl.signal)).toBe(1);
    ctl.abort();
    expect(fired).toBe(1);
  });
});
