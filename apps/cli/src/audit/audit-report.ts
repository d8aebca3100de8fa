import { GENESIS_HASH, verifyLedgerFile, type LedgerHead, type LedgerRoundSummary, type LedgerVerification, type VerifyOptions } from '@fedlora/privacy';

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

/**
 * The verdict: VALID only when every ledger verifies AND every writer's key came from the
 * auditor's trusted keys; UNVERIFIED when nothing is wrong but no trusted keys were given (a
 * ledger re-signed with a fresh key, its key written inside, would look the same); INVALID otherwise.
 */
export type AuditVerdict = 'VALID' | 'INVALID' | 'UNVERIFIED';

/** The `fedlora audit --json` document. */
export interface AuditReport {
  /** True only for the VALID verdict. */
  valid: boolean;
  verdict: AuditVerdict;
  /** Whether signatures were checked against keys given out of band (`--trusted-keys`). */
  trustedKeys: boolean;
  /**
   * The federation ledger's completeness: the longest head that an institution's ledger (or
   * `--head`) vouches for, and who vouched. null: nothing anchors it, so a federation ledger cut
   * after its last entry would look the same (pass the institutions' ledgers or --head).
   */
  anchoredHead: { entries: number; by: string[] } | null;
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
 * ledgers signed by the same writer with different keys, or two federation ledgers, are problems
 * too. Without `trustedKeys` the verdict is at best UNVERIFIED (see AuditVerdict).
 */
export function auditLedgers(paths: readonly string[], opts: VerifyOptions & { head?: LedgerHead } = {}): AuditReport {
  const problems: AuditProblem[] = [];
  const clients: { s: LedgerSummary; v: LedgerVerification }[] = [];
  let federation: { s: LedgerSummary; v: LedgerVerification } | null = null;
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
      if (federation) problems.push({ ledger: path, message: `a second federation ledger (the first is ${federation.s.ledger})` });
      else federation = { s, v };
    } else clients.push({ s, v });
  }
  let anchoredHead: AuditReport['anchoredHead'] = null;
  if (federation) {
    const checked = crossCheck(federation, clients, opts.head);
    problems.push(...checked.problems);
    anchoredHead = checked.anchoredHead;
  }
  const trusted = opts.trustedKeys !== undefined;
  const verdict: AuditVerdict = problems.length > 0 ? 'INVALID' : trusted ? 'VALID' : 'UNVERIFIED';
  return { valid: verdict === 'VALID', verdict, trustedKeys: trusted, anchoredHead, entries, federation: federation?.s ?? null, clients: clients.map((c) => c.s), problems };
}

/**
 * A chain cannot show that its own last entries were cut off, nor that it was rewritten whole;
 * the institutions' ledgers can. Each institution-level entry records the federation ledger head
 * its round's plan announced (`federationHead`): the federation ledger must still have that
 * prefix (same number of lines up to it, same hash), or it was truncated or forked. Each release
 * records its round attempt (`attempt`): the federation ledger must have an entry (round or
 * aborted) for that very attempt, so an aborted attempt of the same round cannot stand in for a
 * removed completed one. Entries written before these fields existed are matched by round only.
 */
function crossCheck(
  federation: { s: LedgerSummary; v: LedgerVerification },
  clients: readonly { s: LedgerSummary; v: LedgerVerification }[],
  head: LedgerHead | undefined,
): { problems: AuditProblem[]; anchoredHead: AuditReport['anchoredHead'] } {
  const fed = federation.v;
  const fedName = federation.s.ledger;
  const known = new Set(fed.rounds.map((r) => r.round));
  const attempts = new Set(fed.parsed.filter((e) => e.attempt !== undefined).map((e) => `${e.round}:${e.attempt}`));
  const out: AuditProblem[] = [];
  let anchored = 0;
  const by = new Set<string>();
  /** Why the federation ledger lacks `h` as a prefix, or undefined when it has it. */
  const missing = (h: LedgerHead, when: string): string | undefined => {
    const n = h.entries;
    const at = Number.isInteger(n) && n >= 0 ? (n === 0 ? GENESIS_HASH : fed.lineHashes[n - 1]) : undefined;
    if (at === undefined) return `saw the federation ledger at ${n} entries${when}, but ${fedName} has only ${fed.lineHashes.length}: the federation ledger was truncated`;
    if (at !== h.hash) return `saw a federation ledger whose entry ${n - 1} hashes to ${String(h.hash).slice(0, 12)}…, but ${fedName} has ${at.slice(0, 12)}… there: the federation ledger was rewritten or forked`;
    return undefined;
  };
  const vouch = (h: LedgerHead, who: string) => {
    if (h.entries >= anchored) anchored = h.entries;
    by.add(who);
  };
  if (head) {
    const wrong = missing(head, ' (--head)');
    if (wrong) out.push({ ledger: fedName, message: `--head: the auditor ${wrong}` });
    else vouch(head, '--head');
  }
  for (const { s: c, v } of clients) {
    if (c.unit !== 'institution') continue;
    const who = c.writer ?? 'client';
    for (const e of v.parsed) {
      const problem = (message: string) => out.push({ ledger: c.ledger, seq: e.seq, message: `entry ${e.seq}: ${who} ${message}` });
      if (e.federationHead) {
        const wrong = missing(e.federationHead, ` in round ${e.round}`);
        if (wrong) problem(wrong);
        else vouch(e.federationHead, who);
      }
      if (e.kind !== 'round') continue;
      if (e.attempt !== undefined) {
        if (!attempts.has(`${e.round}:${e.attempt}`)) problem(`records a release in round ${e.round} (attempt ${e.attempt.slice(0, 12)}…) that ${fedName} has no entry for (federation entry removed?)`);
      } else if (!known.has(e.round)) {
        problem(`records a release in round ${e.round} that the federation ledger ${fedName} has no entry for (federation entries missing?)`);
      }
    }
  }
  return { problems: out, anchoredHead: by.size ? { entries: anchored, by: [...by].sort() } : null };
}
