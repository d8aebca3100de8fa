/**
 * Writes refused requests to the audit log without letting a flood of them turn into a flood of
 * synchronous database writes (each audit row is an fsync'ed SQLite transaction). Per key
 * (reason and claimed client) the first `perWindow` refusals of each window are recorded in
 * full; the rest are only counted and summarised by one `request.refused.suppressed` record
 * when the key's next window begins (or on `flush`). Metrics still count every refusal.
 */
import type { AuditEvent } from '@fedlora/store';

/** What the gRPC front reports for a refused request. */
export interface RefusalInfo {
  method: string;
  clientId?: string;
  code: number;
  details: string;
  reason: string;
}

/** Options of `createRefusalAudit`. */
export interface RefusalAuditOptions {
  append: (event: AuditEvent) => void;
  /** Clock, ms (default Date.now). */
  now?: () => number;
  /** Window length, ms (default 60 s). */
  windowMs?: number;
  /** Refusals recorded in full per key and window (default 10). */
  perWindow?: number;
  /** Distinct keys tracked; beyond this, refusals share one key per reason (default 1000). */
  maxKeys?: number;
}

/** A throttled audit sink: call it for each refusal; `flush` writes pending summaries. */
export interface RefusalAudit {
  (info: RefusalInfo): void;
  flush(): void;
}

interface Bucket {
  start: number;
  recorded: number;
  suppressed: number;
  client?: string;
  reason: string;
}

/** Longest claimed client name written to the audit log (names come from the request). */
const MAX_CLIENT_CHARS = 128;

/** Builds the throttled audit sink. */
export function createRefusalAudit(o: RefusalAuditOptions): RefusalAudit {
  const now = o.now ?? Date.now;
  const windowMs = o.windowMs ?? 60_000;
  const perWindow = o.perWindow ?? 10;
  const maxKeys = o.maxKeys ?? 1000;
  for (const [name, v] of [['windowMs', windowMs], ['perWindow', perWindow], ['maxKeys', maxKeys]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name}: expected an integer >= 1, received ${v}`);
  }
  const buckets = new Map<string, Bucket>();

  const summarise = (b: Bucket): void => {
    if (b.suppressed === 0) return;
    o.append({ event: 'request.refused.suppressed', client: b.client, detail: { reason: b.reason, count: b.suppressed, windowStart: b.start, windowMs } });
    b.suppressed = 0;
  };

  const sink = ((info: RefusalInfo) => {
    const t = now();
    const client = info.clientId ? info.clientId.slice(0, MAX_CLIENT_CHARS) : undefined;
    let key = `${info.reason}\u0000${client ?? ''}`;
    if (!buckets.has(key) && buckets.size >= maxKeys) {
      for (const [k, b] of buckets) {
        if (t - b.start >= windowMs) {
          summarise(b);
          buckets.delete(k);
        }
      }
      if (buckets.size >= maxKeys) key = `${info.reason}\u0000*`;
    }
    let b = buckets.get(key);
    if (b && t - b.start >= windowMs) {
      summarise(b);
      b = undefined;
    }
    if (!b) {
      b = { start: t, recorded: 0, suppressed: 0, client: key.endsWith('\u0000*') ? undefined : client, reason: info.reason };
      buckets.set(key, b);
    }
    if (b.recorded < perWindow) {
      b.recorded++;
      o.append({ event: 'request.refused', client, detail: { method: info.method, code: info.code, reason: info.reason, details: info.details } });
    } else {
      b.suppressed++;
    }
  }) as RefusalAudit;
  sink.flush = () => {
    for (const b of buckets.values()) summarise(b);
  };
  return sink;
}
