/**
 * Wires the dashboard to a running coordinator: its state, the verified ledgers, the audit log
 * of refused requests, and where refused dashboard requests go (the log, and the same throttled
 * audit sink as refused gRPC requests, so a flood of bad tokens cannot become a flood of writes).
 * Used by `fedlora coordinator` (run-from-config.ts) and `fedlora simulate --dashboard`.
 */
import type { EventLogger } from '@fedlora/federation';
import type { RefusalInfo } from '../refusal-audit.js';
import type { DashboardRole } from './dashboard-auth.js';
import type { DashboardServerOptions, RunningDashboard } from './dashboard-server.js';
import { startDashboardServer } from './dashboard-server.js';
import type { DashboardCoordinatorView, DashboardSource } from './dashboard-state.js';
import { countRefusals } from './dashboard-state.js';
import { createLedgerReader } from './ledger-view.js';

/** What `startCoordinatorDashboard` needs. */
export interface CoordinatorDashboardOptions {
  listen: string;
  auth?: { tokens?: Array<{ role: DashboardRole; sha256: string }>; certificates?: Array<{ commonName: string; role: DashboardRole }> };
  tls?: DashboardServerOptions['tls'];
  coordinator: DashboardCoordinatorView;
  /** Ledger files to verify and chart, the federation's first (missing files are skipped until written). */
  ledgerPaths: () => readonly string[];
  /** Audit-log records of refused requests (`request.refused`, `request.refused.suppressed`). */
  auditRecords: () => ReadonlyArray<{ event: string; detail?: unknown }>;
  /** The throttled refusal sink (createRefusalAudit) that refused dashboard requests go to. */
  auditRefusal?: (r: RefusalInfo) => void;
  enrolled?: () => string[] | null;
  roundMetrics?: DashboardSource['roundMetrics'];
  uploadBufferedBytes?: () => number;
  logger: EventLogger;
  pollMs?: number;
}

/** Starts the dashboard for a coordinator; `close` stops it. */
export async function startCoordinatorDashboard(o: CoordinatorDashboardOptions): Promise<RunningDashboard> {
  const deadlines = new Map<string, number>();
  // Remember each attempt's deadline while it is open (summaries do not carry it).
  const noteDeadline = (): void => {
    const r = o.coordinator.openRound?.();
    if (r) deadlines.set(`${r.round}:${r.attempt}`, r.deadlineUnixMs);
  };
  const ticker = setInterval(noteDeadline, 250);
  ticker.unref();
  const source: DashboardSource = {
    coordinator: {
      status: () => o.coordinator.status(),
      openRound: () => {
        noteDeadline();
        return o.coordinator.openRound?.() ?? null;
      },
    },
    privacy: createLedgerReader(o.ledgerPaths),
    securityEvents: () => countRefusals(o.auditRecords()),
    enrolled: o.enrolled ?? (() => null),
    roundMetrics: o.roundMetrics,
    uploadBufferedBytes: o.uploadBufferedBytes,
    deadlines: () => deadlines,
  };
  const server = await startDashboardServer({
    listen: o.listen,
    source,
    auth: { tokens: o.auth?.tokens ?? [], certificates: o.auth?.certificates ?? [] },
    tls: o.tls,
    pollMs: o.pollMs,
    onRefused: (r) => {
      o.logger.warn({ event: 'dashboard.refused', method: r.method, path: r.path, status: r.status, reason: r.reason, remoteAddress: r.remoteAddress });
      o.auditRefusal?.({ method: `dashboard ${r.method} ${r.path}`, code: r.status, reason: `dashboard: ${r.status === 401 ? 'unauthenticated' : 'forbidden'}`, details: `${r.reason} (from ${r.remoteAddress})` });
    },
    onError: (err) => o.logger.error({ event: 'dashboard.error', message: err instanceof Error ? err.message : String(err) }),
  });
  o.logger.info({ event: 'dashboard.listening', url: server.url });
  return {
    ...server,
    close: async () => {
      clearInterval(ticker);
      await server.close();
    },
  };
}
