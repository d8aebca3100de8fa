/**
 * What GetStatus shows, and to whom (#16 finding 12). The round history names who took part, who
 * declined (a hint that an institution's privacy budget ran out) and who dropped. A caller that
 * proves an enrolled identity (a signed request) sees it all; anyone else (an unsigned call, any
 * TLS peer, every caller of a coordinator without enrolment) gets the same history with the names
 * taken out: counts, states, losses and reasons stay, which is all `fedlora status` prints.
 */
import type { RoundSummary } from '@fedlora/federation';

/** The coordinator's operator view as FederationCoordinator.status() returns it (the fields sent). */
export interface CoordinatorStatus {
  federationId: string;
  currentRound: number;
  totalRounds: number;
  state: string;
  connectedClients: number;
  rounds: RoundSummary[];
}

/** A round of the history without institution names (`redacted: true` marks it). */
export type RedactedRound = RoundSummary & { redacted: true; droppedCount: number; declinedCount: number };

/** Stands in for an institution's name in a redacted reason. */
export const REDACTED_NAME = '<institution>';

/** The GetStatus response: the full history for an authenticated caller, redacted otherwise. */
export function statusToProto(s: CoordinatorStatus, authenticated: boolean) {
  const rounds = authenticated ? s.rounds : redactRounds(s.rounds);
  return {
    federationId: s.federationId,
    currentRound: s.currentRound,
    totalRounds: s.totalRounds,
    state: s.state,
    connectedClients: s.connectedClients,
    roundsJson: JSON.stringify(rounds),
  };
}

/**
 * The history without names: name lists emptied (their lengths kept as counts), and every name
 * that appears in any round's lists cut out of the abort reasons (a reason can quote a client,
 * e.g. "client(s) inst-4 stopped mid-upload"; every cohort member is in one of the lists).
 */
export function redactRounds(rounds: readonly RoundSummary[]): RedactedRound[] {
  const names = new Set<string>();
  for (const r of rounds) for (const n of [...r.participantNames, ...r.dropped, ...r.declined]) if (n) names.add(n);
  // Longest first, so a name that contains another ("inst-10", "inst-1") is cut whole.
  const ordered = [...names].sort((a, b) => b.length - a.length);
  const scrub = (text: string): string => {
    let out = text;
    for (const n of ordered) out = out.replace(new RegExp(`(?<![A-Za-z0-9._-])${escapeRegExp(n)}(?![A-Za-z0-9._-])`, 'g'), REDACTED_NAME);
    return out;
  };
  return rounds.map((r) => ({
    ...r,
    participantNames: [],
    dropped: [],
    declined: [],
    droppedCount: r.dropped.length,
    declinedCount: r.declined.length,
    ...(r.reason !== undefined ? { reason: scrub(r.reason) } : {}),
    redacted: true as const,
  }));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
