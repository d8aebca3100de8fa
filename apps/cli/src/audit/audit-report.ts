import { verifyLedgerFile, type LedgerRoundSummary, type LedgerVerification, type VerifyOptions } from '@fedlora/privacy';

/** One ledger's summary in the audit report. */
export interface LedgerSummary {
  ledger: string;
  valid: boolean;
  writer: string | null;
  publicKey: string | null;
  unit: string | null;
  /** Whose data the epsilon protects, as printed beside it: "institution", "document", "patient_id". */
  unitLabel: string | null;
  entries: number;
  /** Cumulative epsilon recomputed from the recorded parameters. */
  epsilon: number | null;
  delta: number | null;
  budget: { epsilon: number; delta: number } | null;
  rounds: LedgerRoundSummary[];
}

/** A problem found in one ledger (or across ledgers), naming the entry. */
export interface AuditProblem {
  ledger: string;
  line?: number;
  seq?: number;
  message: string;
}

/** The `fedlora audit --json` document. */
export interface AuditReport {
  valid: boolean;
  entries: number;
  federation: LedgerSummary | null;
  clients: LedgerSummary[];
  problems: AuditProblem[];
}

function summarize(ledger: string, v: LedgerVerification): LedgerSummary {
  return {
    ledger,
    valid: v.valid,
    writer: v.writer ?? null,
    publicKey: v.publicKey ?? null,
    unit: v.unit ?? null,
    unitLabel: v.unitLabel ?? null,
    entries: v.entries,
    epsilon: Number.isFinite(v.epsilon) ? v.epsilon : null,
    delta: v.delta ?? null,
    budget: v.budget ?? null,
    rounds: v.rounds.map((r) => ({ ...r, epsilon: Number.isFinite(r.epsilon) ? r.epsilon : (null as unknown as number) })),
  };
}

/**
 * Verifies every ledger and assembles the audit: the coordinator's ledger is the federation's,
 * the others are the institutions'. Any problem in any ledger makes the audit invalid; two
 * ledgers signed by the same writer with different keys, or two federation ledgers, are problems too.
 */
export function auditLedgers(paths: readonly string[], opts: VerifyOptions = {}): AuditReport {
  const problems: AuditProblem[] = [];
  const clients: LedgerSummary[] = [];
  let federation: LedgerSummary | null = null;
  let entries = 0;
  const keys = new Map<string, string>();
  for (const path of paths) {
    let v: LedgerVerification;
    try {
      v = verifyLedgerFile(path, opts);
    } catch (err) {
      problems.push({ ledger: path, message: `cannot read ledger: ${(err as Error).message}` });
      continue;
    }
    entries += v.entries;
    for (const p of v.problems) problems.push({ ledger: path, line: p.line, ...(p.seq !== undefined ? { seq: p.seq } : {}), message: p.message });
    if (v.entries === 0) problems.push({ ledger: path, message: 'ledger is empty' });
    if (v.writer && v.publicKey) {
      const seen = keys.get(v.writer);
      if (seen && seen !== v.publicKey) problems.push({ ledger: path, message: `writer ${v.writer} signs with a different key than in another ledger` });
      keys.set(v.writer, v.publicKey);
    }
    const s = summarize(path, v);
    if (v.role === 'coordinator') {
      if (federation) problems.push({ ledger: path, message: `a second federation ledger (the first is ${federation.ledger})` });
      else federation = s;
    } else clients.push(s);
  }
  if (federation) problems.push(...crossCheck(federation, clients));
  return { valid: problems.length === 0, entries, federation, clients, problems };
}

/**
 * A chain cannot show that its own last entries were cut off; the other ledgers can. Every
 * institution-level release an institution recorded must have a federation entry (round or
 * aborted) for the same round; otherwise the federation ledger has lost entries.
 */
function crossCheck(federation: LedgerSummary, clients: readonly LedgerSummary[]): AuditProblem[] {
  const known = new Set(federation.rounds.map((r) => r.round));
  const out: AuditProblem[] = [];
  for (const c of clients) {
    if (c.unit !== 'institution') continue;
    for (const r of c.rounds) {
      if (r.kind === 'round' && !known.has(r.round)) {
        out.push({
          ledger: c.ledger,
          seq: r.seq,
          message: `entry ${r.seq}: ${c.writer ?? 'client'} records a release in round ${r.round} that the federation ledger ${federation.ledger} has no entry for (federation entries missing?)`,
        });
      }
    }
  }
  return out;
}
