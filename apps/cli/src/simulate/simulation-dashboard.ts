/**
 * `fedlora simulate --dashboard HOST:PORT`: the coordinator's web dashboard on a simulated
 * federation, started by the coordinator's builder like `fedlora coordinator`'s. It charts every
 * ledger of the run (the federation's and each institution's, all verified from their files),
 * keeps refused requests in memory (a simulation has no store), and can linger after the run so
 * people can look at the end state.
 */
import type { AuditEvent } from '@fedlora/store';
import type { CoordinatorSpec, RefusalInfo, RunningDashboard } from '@fedlora/coordinator';
import { createRefusalAudit } from '@fedlora/coordinator';

/** The dashboard settings of a simulation. */
export interface SimulationDashboard {
  /** host:port (loopback); port 0 picks a free one. */
  listen: string;
  /** Keep serving this long after the run ended (ms). */
  lingerMs?: number;
  /** Called with the URL once it listens. */
  onListening?: (url: string) => void;
}

/** A simulation's dashboard: the coordinator spec's part, the gRPC front's refusal hook, and its end. */
export interface SimulationDashboardParts {
  spec: NonNullable<CoordinatorSpec['dashboard']>;
  refused(r: RefusalInfo): void;
  /** Waits `lingerMs`, then stops serving. */
  finish(running: RunningDashboard | undefined): Promise<void>;
}

/** The dashboard of a simulation, for `buildCoordinator`: in-memory refusal audit, every ledger, eval loss per round. */
export function simulationDashboard(o: SimulationDashboard, ctx: { ledgers: readonly string[]; evalLoss: (round: number) => number | null | undefined }): SimulationDashboardParts {
  const audit: AuditEvent[] = [];
  // Bounded: the oldest records go first, and the throttle keeps floods to one summary per window.
  const auditRefusal = createRefusalAudit({ append: (e) => (audit.push(e), audit.length > 10_000 && audit.shift()) });
  return {
    spec: {
      listen: o.listen,
      ledgerPaths: () => ctx.ledgers,
      auditRecords: () => audit,
      auditRefusal,
      roundMetrics: (round) => {
        const loss = ctx.evalLoss(round);
        return typeof loss === 'number' ? { evalLoss: loss } : undefined;
      },
      pollMs: 1000,
    },
    refused: auditRefusal,
    finish: async (running) => {
      auditRefusal.flush();
      if (running && o.lingerMs) await new Promise((r) => setTimeout(r, o.lingerMs));
      await running?.close();
    },
  };
}
