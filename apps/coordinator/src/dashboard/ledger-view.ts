/**
 * The privacy section's data, read only from verified ledgers: each file is re-verified
 * (libs/privacy verifyLedgerFile: hash chain, signatures, every epsilon recomputed from the
 * recorded parameters) whenever it changed on disk. Epsilons shown are the verifier's, never a
 * number the coordinator keeps in memory; a ledger that fails verification is shown as such and
 * contributes no points.
 */
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { LedgerVerification } from '@fedlora/privacy';
import { verifyLedgerFile } from '@fedlora/privacy';
import type { EpsilonSeries } from './charts.js';

/** One ledger as the dashboard shows it. */
export interface LedgerView {
  label: string;
  role: 'coordinator' | 'client' | null;
  valid: boolean;
  entries: number;
  /** Problems the verifier found (first few), naming the entry. */
  problems: string[];
  series: EpsilonSeries;
}

/** A round an institution refused, or a federation round that released nothing. */
export interface RefusalView {
  ledger: string;
  round: number;
  kind: 'refused' | 'aborted';
  note: string;
  /** Entries with this ledger, round, kind and note (a round is retried after it released nothing). */
  count: number;
}

/** The privacy section: verified series, refusals, and whether everything verified. */
export interface PrivacyView {
  verified: boolean;
  ledgers: LedgerView[];
  refusals: RefusalView[];
}

/** Converts one verification into the dashboard's series (points only for released rounds). */
export function ledgerView(path: string, v: LedgerVerification): LedgerView {
  const unit = v.unitLabel ?? v.unit ?? 'unknown';
  const label = `${v.writer ?? basename(path)}${v.role === 'coordinator' ? ' (federation)' : v.unit && v.unit !== 'institution' ? ` (${unit})` : ''}`;
  let previous = 0;
  const points = v.rounds
    .filter((r) => r.kind === 'round' && Number.isFinite(r.epsilon))
    .map((r) => {
      const p = { round: r.round, epsilon: r.epsilon, increment: r.epsilon - previous, mechanism: r.mechanism ?? 'unknown', noise: r.noise ?? 'unknown' };
      previous = r.epsilon;
      return p;
    });
  return {
    label,
    role: v.role ?? null,
    valid: v.valid,
    entries: v.entries,
    problems: v.problems.slice(0, 5).map((p) => p.message),
    series: { label, unit, delta: v.delta ?? null, budget: v.budget?.epsilon ?? null, points: v.valid ? points : [] },
  };
}

/** Re-verifies each ledger when its size or modification time changed; otherwise reuses the last result. */
export function createLedgerReader(paths: () => readonly string[]): () => PrivacyView {
  const cache = new Map<string, { stamp: string; view: LedgerView; refusals: RefusalView[] }>();
  return () => {
    const ledgers: LedgerView[] = [];
    const refusals: RefusalView[] = [];
    for (const path of paths()) {
      let stamp: string;
      try {
        const st = statSync(path);
        if (st.size === 0) continue; // opened, nothing recorded yet
        stamp = `${st.size}:${st.mtimeMs}`;
      } catch {
        continue; // not written yet (no round has ended)
      }
      let hit = cache.get(path);
      if (hit?.stamp !== stamp) {
        let v: LedgerVerification;
        try {
          v = verifyLedgerFile(path);
        } catch (err) {
          v = { valid: false, entries: 0, epsilon: Number.NaN, rounds: [], problems: [{ line: 0, message: `cannot read: ${(err as Error).message}` }], parsed: [], lastHash: '', lineHashes: [], cumulativeRdp: [] };
        }
        const view = ledgerView(path, v);
        const own = new Map<string, RefusalView>();
        for (const r of v.rounds) {
          if (r.kind !== 'refused' && r.kind !== 'aborted') continue;
          const note = r.note ?? r.kind;
          const key = `${r.round}\u0000${r.kind}\u0000${note}`;
          const seen = own.get(key);
          if (seen) seen.count++;
          else own.set(key, { ledger: view.label, round: r.round, kind: r.kind, note, count: 1 });
        }
        hit = { stamp, view, refusals: [...own.values()] };
        cache.set(path, hit);
      }
      ledgers.push(hit.view);
      refusals.push(...hit.refusals);
    }
    return { verified: ledgers.length > 0 && ledgers.every((l) => l.valid), ledgers, refusals };
  };
}
