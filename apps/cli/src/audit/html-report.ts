import type { EpsilonSeries } from '@fedlora/coordinator';
import { budgetChartSpec, epsilonChartSpec, renderSvg } from '@fedlora/coordinator';
import type { AuditReport, LedgerSummary } from './audit-report.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * The audit's ledgers as chart series (the dashboard's charts, apps/coordinator dashboard/charts.ts):
 * one point per released round at the recomputed cumulative epsilon, with mechanism and noise.
 */
export function auditSeries(report: AuditReport): EpsilonSeries[] {
  const ledgers: LedgerSummary[] = [...(report.federation ? [report.federation] : []), ...report.clients];
  return ledgers.map((l) => {
    const unit = l.unitLabel ?? l.unit ?? 'unknown';
    const label = `${l.writer ?? l.ledger}${l === report.federation ? ' (federation)' : l.unit && l.unit !== 'institution' ? ` (${unit})` : ''}`;
    let previous = 0;
    const points = l.rounds
      .filter((r) => r.kind === 'round' && r.epsilon !== null && Number.isFinite(r.epsilon))
      .map((r) => {
        const p = { round: r.round, epsilon: r.epsilon, increment: r.epsilon - previous, mechanism: r.mechanism ?? 'unknown', noise: r.noise ?? 'unknown' };
        previous = r.epsilon;
        return p;
      });
    return { label, unit, delta: l.delta, budget: l.budget?.epsilon ?? null, points };
  });
}

function ledgerRow(l: LedgerSummary, role: string): string {
  const eps = l.epsilon === null ? '&infin;' : l.epsilon.toFixed(4);
  const budget = l.budget ? `${l.budget.epsilon} (&delta; ${l.budget.delta})` : '&mdash;';
  const unit = l.unitLabel ? `per ${escapeHtml(l.unitLabel)}` : '?';
  return `<tr><td>${role}</td><td>${escapeHtml(l.writer ?? '?')}</td><td>${escapeHtml(l.ledger)}</td><td>${l.entries}</td><td>${eps}</td><td>${unit}</td><td>${l.delta ?? ''}</td><td>${budget}</td><td>${l.valid ? 'valid' : '<b>INVALID</b>'}</td></tr>`;
}

/** A self-contained HTML audit report: verdict, per-ledger table, epsilon chart, problems. */
export async function renderAuditHtml(report: AuditReport, generatedAt: string): Promise<string> {
  const series = auditSeries(report);
  const svg = await renderSvg(epsilonChartSpec(series));
  const budget = budgetChartSpec(series);
  const budgetSvg = budget ? await renderSvg(budget) : '<p>No ledger records a budget.</p>';
  const rows = [...(report.federation ? [ledgerRow(report.federation, 'federation')] : []), ...report.clients.map((c) => ledgerRow(c, 'institution'))];
  const problems = report.problems.length
    ? `<ul>${report.problems.map((p) => `<li><code>${escapeHtml(p.ledger)}</code>: ${escapeHtml(p.message)}</li>`).join('')}</ul>`
    : '<p>None.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedlora privacy audit</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}.bad{color:#b00}</style>
</head><body>
<h1>fedlora privacy audit</h1>
<p>Generated ${escapeHtml(generatedAt)}. Verdict: <b class="${report.valid ? 'ok' : 'bad'}">${report.verdict}</b>${report.verdict === 'UNVERIFIED' ? ' (no trusted keys: signatures checked only against the keys written in the ledgers)' : ''} (${report.entries} entries).
Every epsilon below is recomputed from the parameters recorded in the signed entries, not read from the files.</p>
<table><thead><tr><th>role</th><th>writer</th><th>ledger</th><th>entries</th><th>epsilon</th><th>unit</th><th>delta</th><th>budget</th><th>status</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<h2>Epsilon spent over rounds</h2>
<p>Hover over a point for its round, epsilon, mechanism and noise.</p>
${svg}
<h2>Share of each budget spent</h2>
${budgetSvg}
<h2>Problems</h2>
${problems}
</body></html>
`;
}
