import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '@fedlora/store';
import { createRefusalAudit, type RefusalInfo } from './refusal-audit.js';

const refusal = (over: Partial<RefusalInfo> = {}): RefusalInfo => ({ method: 'Register', clientId: 'mallory', code: 16, details: 'not enrolled', reason: 'unknown-identity', ...over });

function setup(options: { perWindow?: number; maxKeys?: number } = {}) {
  const events: AuditEvent[] = [];
  let t = 1_000;
  const audit = createRefusalAudit({ append: (e) => events.push(e), now: () => t, windowMs: 60_000, ...options });
  return { events, audit, advance: (ms: number) => (t += ms) };
}

describe('refusal audit', () => {
  it('records each refusal in full while a key stays under its per-window quota', () => {
    const { events, audit } = setup({ perWindow: 3 });
    audit(refusal());
    audit(refusal({ reason: 'replay', clientId: 'alice' }));
    expect(events).toEqual([
      { event: 'request.refused', client: 'mallory', detail: { method: 'Register', code: 16, reason: 'unknown-identity', details: 'not enrolled' } },
      { event: 'request.refused', client: 'alice', detail: { method: 'Register', code: 16, reason: 'replay', details: 'not enrolled' } },
    ]);
  });

  it('summarises a flood: quota in full, the rest as one suppressed record when the window rolls over', () => {
    const { events, audit, advance } = setup({ perWindow: 2 });
    for (let i = 0; i < 1000; i++) audit(refusal());
    expect(events).toHaveLength(2);
    advance(60_000);
    audit(refusal());
    expect(events).toHaveLength(4);
    expect(events[2]).toEqual({ event: 'request.refused.suppressed', client: 'mallory', detail: { reason: 'unknown-identity', count: 998, windowStart: 1_000, windowMs: 60_000 } });
    expect(events[3]).toMatchObject({ event: 'request.refused', client: 'mallory' });
  });

  it('flush writes pending summaries; a flood of distinct names shares one key per reason beyond maxKeys', () => {
    const { events, audit } = setup({ perWindow: 1, maxKeys: 2 });
    for (let i = 0; i < 50; i++) audit(refusal({ clientId: `name-${i}` }));
    expect(events.filter((e) => e.event === 'request.refused')).toHaveLength(3); // name-0, name-1, then the shared key
    audit.flush();
    expect(events.at(-1)).toEqual({ event: 'request.refused.suppressed', client: undefined, detail: { reason: 'unknown-identity', count: 47, windowStart: 1_000, windowMs: 60_000 } });
  });

  it('truncates the claimed client name and validates its options', () => {
    const { events, audit } = setup();
    audit(refusal({ clientId: 'x'.repeat(1000) }));
    expect(events[0]!.client).toHaveLength(128);
    expect(() => createRefusalAudit({ append: () => undefined, perWindow: 0 })).toThrow(/perWindow: expected an integer >= 1, received 0/);
  });
});
