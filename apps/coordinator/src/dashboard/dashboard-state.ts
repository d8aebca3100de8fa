/**
 * What the dashboard shows, assembled from the coordinator's own state (rounds, clients), the
 * verified ledgers (privacy) and the audit log (security events). Nothing here reads a secret
 * or an individual update: rounds carry counts and client names, the ledger only what it
 * records. The snapshot is cut to the reader's role before it leaves (README: Dashboard).
 */
import type { RoundSummary } from '@fedlora/federation';
import type { DashboardRole } from './dashboard-auth.js';
import type { EpsilonSeries, TrainingPoint } from './charts.js';
import type { PrivacyView } from './ledger-view.js';

/** The coordinator's view the dashboard reads (FederationCoordinator.status() and openRound()). */
export interface DashboardCoordinatorView {
  status(): { federationId: string; state: string; currentRound: number; completedRounds: number; totalRounds: number; connectedClients: number; rounds: RoundSummary[] };
  openRound?(): { round: number; attempt: number; stage: string; cohort: number; reported: number; declined: number; deadlineUnixMs: number; startedAt: number } | null;
}

/** Everything the dashboard reads; the apps (coordinator, simulate) provide it. */
export interface DashboardSource {
  coordinator: DashboardCoordinatorView;
  /** Verified ledgers (federation first). */
  privacy: () => PrivacyView;
  /** Refused and unauthenticated requests from the audit log, per reason. */
  securityEvents: () => Array<{ reason: string; count: number }>;
  /** Enrolled institutions (names), or null when the federation admits any client. */
  enrolled: () => string[] | null;
  /** Held-out metrics of a round, where the app evaluates (simulate) or clients report them. */
  roundMetrics?: (round: number) => Record<string, number> | undefined;
  /** Bytes of uploads in progress (transport). */
  uploadBufferedBytes?: () => number;
  /** Deadline of each round attempt, by `round:attempt` (recorded when rounds open). */
  deadlines?: () => ReadonlyMap<string, number>;
}

/** One row of the rounds table. */
export interface RoundRow {
  round: number;
  attempt: number;
  status: string;
  participants: number;
  survivors: number | null;
  cohort: number;
  declined: number;
  deadline: string | null;
  seconds: number;
  reason: string | null;
}

/** The JSON document behind the page (GET /api/state). */
export interface DashboardSnapshot {
  role: DashboardRole;
  federation: { id: string; state: string; currentRound: number; completedRounds: number; totalRounds: number; connectedClients: number; enrolled: string[] | null };
  current: { round: number; attempt: number; stage: string; cohort: number; reported: number; declined: number; deadline: string; uploadBufferedBytes: number | null } | null;
  rounds: RoundRow[];
  /** Operators only. */
  training?: TrainingPoint[];
  privacy: { verified: boolean; ledgers: Array<{ label: string; role: string | null; valid: boolean; entries: number; problems: string[]; series: EpsilonSeries }>; refusals: PrivacyView['refusals'] };
  /** Operators only. */
  security?: { counts: Array<{ reason: string; count: number }>; total: number };
}

const iso = (ms: number | undefined): string | null => (ms !== undefined && Number.isFinite(ms) ? new Date(ms).toISOString() : null);

/** Training points: mean train loss, plus held-out metrics where known (summary metrics or the app's). */
function trainingPoints(rounds: readonly RoundSummary[], extra: DashboardSource['roundMetrics']): TrainingPoint[] {
  return rounds
    .filter((r) => r.status === 'completed')
    .map((r) => {
      const own = extra?.(r.round);
      // The app's own evaluation is of the adapter after the round; the institutions' federated
      // evaluation (RoundSummary.evaluation) is of the adapter the round started from.
      const fed = r.evaluation;
      const m: Record<string, number | undefined> = own ?? { evalLoss: fed?.loss, mcqAccuracy: fed?.acc };
      const pick = (...keys: string[]) => keys.map((k) => m[k]).find((v): v is number => typeof v === 'number' && Number.isFinite(v)) ?? null;
      const evalLoss = pick('evalLoss');
      return {
        round: r.round,
        trainLoss: r.trainLoss,
        evalLoss,
        perplexity: pick('perplexity') ?? (evalLoss !== null ? Math.exp(evalLoss) : null),
        mcqAccuracy: pick('mcqAccuracy'),
        ...(evalLoss !== null || m.mcqAccuracy !== undefined ? { evaluated: own ? ('after the round' as const) : ('at the start of the round' as const) } : {}),
      };
    });
}

/** Builds the snapshot a reader with `role` may see. */
export function buildSnapshot(src: DashboardSource, role: DashboardRole): DashboardSnapshot {
  const st = src.coordinator.status();
  const open = src.coordinator.openRound?.() ?? null;
  const deadlines = src.deadlines?.();
  const rounds: RoundRow[] = st.rounds.map((r) => ({
    round: r.round,
    attempt: r.attempt,
    status: r.status,
    participants: r.participants,
    survivors: r.status === 'completed' ? r.participantNames.length : null,
    cohort: r.cohort,
    declined: r.declined.length,
    deadline: iso(deadlines?.get(`${r.round}:${r.attempt}`)),
    seconds: Math.max(0, Math.round((r.endedAt - r.startedAt) / 100) / 10),
    reason: r.reason ?? null,
  }));
  const privacy = src.privacy();
  const security = src.securityEvents();
  return {
    role,
    federation: {
      id: st.federationId,
      state: st.state,
      currentRound: st.currentRound,
      completedRounds: st.completedRounds,
      totalRounds: st.totalRounds,
      connectedClients: st.connectedClients,
      enrolled: role === 'operator' ? src.enrolled() : null,
    },
    current: open
      ? { round: open.round, attempt: open.attempt, stage: open.stage, cohort: open.cohort, reported: open.reported, declined: open.declined, deadline: iso(open.deadlineUnixMs)!, uploadBufferedBytes: src.uploadBufferedBytes?.() ?? null }
      : null,
    rounds,
    ...(role === 'operator' ? { training: trainingPoints(st.rounds, src.roundMetrics) } : {}),
    privacy: { verified: privacy.verified, ledgers: privacy.ledgers, refusals: privacy.refusals },
    ...(role === 'operator' ? { security: { counts: security, total: security.reduce((a, c) => a + c.count, 0) } } : {}),
  };
}

/** Counts audit-log refusals per reason (a suppressed summary counts as its `count` refusals). */
export function countRefusals(records: ReadonlyArray<{ event: string; detail?: unknown }>): Array<{ reason: string; count: number }> {
  const counts = new Map<string, number>();
  for (const r of records) {
    const d = (r.detail ?? {}) as { reason?: unknown; count?: unknown };
    const reason = typeof d.reason === 'string' ? d.reason.slice(0, 120) : r.event;
    if (r.event === 'request.refused') counts.set(reason, (counts.get(reason) ?? 0) + 1);
    else if (r.event === 'request.refused.suppressed' && typeof d.count === 'number') counts.set(reason, (counts.get(reason) ?? 0) + d.count);
  }
  return [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}
