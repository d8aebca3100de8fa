/**
 * Prometheus metrics of a coordinator (prom-client), in a registry of its own so two coordinators
 * in one process (tests) never share counters. The round loop, the gRPC front and the operator
 * view feed it through plain callbacks; nothing here knows about gRPC or the store.
 *
 * Exposed series (all prefixed `fedlora_`):
 * - rounds_completed_total, rounds_aborted_total          counters
 * - round_duration_seconds{status}                         histogram of round attempts
 * - round_participants, round_cohort                       gauges (last finished attempt)
 * - participant_updates_total                              counter of aggregated client updates
 * - bytes_total{direction="in"|"out"}                      tensor payload bytes over the wire
 * - requests_refused_total{method,reason}                  refusals (auth reasons, status names)
 * - current_round, completed_rounds, total_rounds, connected_clients, run_state{state}
 *                                                          gauges read from the operator view at scrape time
 * - upload_buffered_bytes                                  bytes held by uploads in progress (scrape time)
 * plus prom-client's standard process_* and nodejs_* series (memory, CPU, event-loop lag, handles)
 * unless `processMetrics: false`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RoundSummary } from '@fedlora/federation';

/** The part of the coordinator's operator view the gauges read. */
export interface CoordinatorStatusView {
  state: string;
  currentRound: number;
  completedRounds: number;
  totalRounds: number;
  connectedClients: number;
  /** Bytes held by uploads in progress (verified partial uploads kept for resume included). */
  uploadBufferedBytes?: number;
}

/** Run states reported as `fedlora_run_state{state}` (1 for the current one, 0 otherwise). */
export const RUN_STATES = ['waiting-for-clients', 'training', 'finished', 'failed', 'stopped'] as const;

/** Callbacks that update the metrics, plus the registry to serve. */
export interface CoordinatorMetrics {
  registry: Registry;
  /** A round attempt finished (completed or aborted). */
  roundEnded(summary: RoundSummary): void;
  /** Tensor payload bytes received (`in`) or sent (`out`). */
  bytes(direction: 'in' | 'out', bytes: number): void;
  /** A request was refused. */
  refused(info: { method: string; reason: string }): void;
  /** Where the scrape-time gauges read the federation's state (set once the coordinator exists). */
  observe(status: () => CoordinatorStatusView): void;
}

/** Builds a fresh registry with the coordinator's series. */
export function createCoordinatorMetrics(options: { processMetrics?: boolean } = {}): CoordinatorMetrics {
  const registry = new Registry();
  // Collected at scrape time; no timer keeps the process alive.
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  let status: (() => CoordinatorStatusView) | undefined;
  const completed = new Counter({ name: 'fedlora_rounds_completed_total', help: 'Rounds aggregated and committed', registers: [registry] });
  const aborted = new Counter({ name: 'fedlora_rounds_aborted_total', help: 'Round attempts aborted (too few reports, deadline, restart)', registers: [registry] });
  const duration = new Histogram({
    name: 'fedlora_round_duration_seconds',
    help: 'Wall time of a round attempt, from opening to aggregation or abort',
    labelNames: ['status'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const participants = new Gauge({ name: 'fedlora_round_participants', help: 'Clients whose updates were aggregated in the last finished attempt', registers: [registry] });
  const cohort = new Gauge({ name: 'fedlora_round_cohort', help: 'Clients selected for the last finished attempt', registers: [registry] });
  const updates = new Counter({ name: 'fedlora_participant_updates_total', help: 'Client updates aggregated over all rounds', registers: [registry] });
  const bytes = new Counter({ name: 'fedlora_bytes_total', help: 'Tensor payload bytes over gRPC', labelNames: ['direction'] as const, registers: [registry] });
  const refused = new Counter({ name: 'fedlora_requests_refused_total', help: 'Refused requests by method and reason', labelNames: ['method', 'reason'] as const, registers: [registry] });
  bytes.inc({ direction: 'in' }, 0);
  bytes.inc({ direction: 'out' }, 0);

  const fromStatus = (name: string, help: string, read: (s: CoordinatorStatusView) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (status) this.set(read(status()));
      },
    });
  fromStatus('fedlora_current_round', 'Round open now (or the last completed one)', (s) => s.currentRound);
  fromStatus('fedlora_completed_rounds', 'Rounds committed, including those before a restart', (s) => s.completedRounds);
  fromStatus('fedlora_total_rounds', 'Rounds the run is configured for', (s) => s.totalRounds);
  fromStatus('fedlora_connected_clients', 'Clients seen within the liveness window', (s) => s.connectedClients);
  fromStatus('fedlora_upload_buffered_bytes', 'Bytes held by uploads in progress, bounded by uploads.maxBufferedMB', (s) => s.uploadBufferedBytes ?? 0);
  new Gauge({
    name: 'fedlora_run_state',
    help: 'Run state of the federation (1 for the current state)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (!status) return;
      const now = status().state;
      for (const s of RUN_STATES) this.set({ state: s }, s === now ? 1 : 0);
    },
  });

  return {
    registry,
    roundEnded(summary) {
      (summary.status === 'completed' ? completed : aborted).inc();
      duration.observe({ status: summary.status }, Math.max(0, (summary.endedAt - summary.startedAt) / 1000));
      participants.set(summary.participants);
      cohort.set(summary.cohort);
      if (summary.status === 'completed') updates.inc(summary.participants);
    },
    bytes(direction, n) {
      if (Number.isFinite(n) && n > 0) bytes.inc({ direction }, n);
    },
    refused(info) {
      refused.inc({ method: info.method, reason: info.reason });
    },
    observe(s) {
      status = s;
    },
  };
}
