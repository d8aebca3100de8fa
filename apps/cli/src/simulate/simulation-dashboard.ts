/**
 * `fedlora simulate --dashboard HOST:PORT`: the coordinator's web dashboard on a simulated
 * federation. It charts every ledger of the run (the federation's and each institution's, all
 * verified from their files), keeps refused requests in memory (a simulation has no store), and
 * can linger after the run so people can look at the end state.
 */
import type { AuditEvent } from '@fedlora/store';
import type { EventLogger } from '@fedlora/federation';
import type { DashboardCoordinatorView, RefusalInfo, RunningDashboard } from '@fedlora/coordinator';
import { createRefusalAudit, startCoordinatorDashboard } from '@fedlora/coordinator';

/** The dashboard settings of a simulation. */
export interface SimulationDashboard {
  /** host:port (loopback); port 0 picks a free one. */
  listen: string;
  /** Keep serving this long after the run ended (ms). */
  lingerMs?: number;
  /** Called with the URL once it listens. */
  onListening?: (url: string) => void;
}

/** A running simulation dashboard: `refused` is the gRPC front's refusal hook. */
export interface SimulationDashboardHandle {
  refused(r: RefusalInfo): void;
  /** Waits `lingerMs`, then stops serving. */
  finish(): Promise<void>;
}

/** Starts the dashboard on a simulation's coordinator. */
export async function startSimulationDashboard(
  o: SimulationDashboard,
  ctx: { coordinator: DashboardCoordinatorView; ledgers: readonly string[]; evalLoss: (round: number) => number | null | undefined; logger: EventLogger },
): Promise<SimulationDashboardHandle> {
  const audit: AuditEvent[] = [];
  // Bounded: the oldest records go first, and the throttle keeps floods to one summary per window.
  const auditRefusal = createRefusalAudit({ append: (e) => (audit.push(e), audit.length > 10_000 && audit.shift()) });
  const server: RunningDashboard = await startCoordinatorDashboard({
    listen: o.listen,
    coordinator: ctx.coordinator,
    ledgerPaths: () => ctx.ledgers,
    auditRecords: () => audit,
    auditRefusal,
    roundMetrics: (round) => {
      const loss = ctx.evalLoss(round);
      return typeof loss === 'number' ? { evalLoss: loss } : undefined;
    },
    logger: ctx.logger,
    pollMs: 1000,
  });
  o.onListening?.(server.url);
  return {
    refused: auditRefusal,
    finish: async () => {
      auditRefusal.flush();
      if (o.lingerMs) await new Promise((r) => setTimeout(r, o.lingerMs));
      await server.close();
    },
  };
}
