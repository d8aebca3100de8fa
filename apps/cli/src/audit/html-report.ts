import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { AuditReport, LedgerSummary } from './audit-report.js';

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Vega-Lite spec: cumulative epsilon per round for every ledger, with each budget as a dashed rule. */
export function epsilonChartSpec(report: AuditReport): TopLevelSpec {
  const ledgers: LedgerSummary[] = [...(report.federation ? [report.federation] : []), ...report.clients];
  const points = ledgers.flatMap((l) =>
    l.rounds.filter((r) => r.epsilon !== null).map((r) => ({ ledger: `${l.writer ?? l.ledger}${l === report.federation ? ' (federation)' : ''}`, round: r.round, epsilon: r.epsilon })),
  );
  const budgets = ledgers
    .filter((l) => l.budget)
    .map((l) => ({ ledger: `${l.writer ?? l.ledger}${l === report.federation ? ' (federation)' : ''}`, budget: l.budget!.epsilon }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 640,
    height: 320,
    title: 'Cumulative epsilon over rounds (dashed: budgets)',
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'round', type: 'quantitative', title: 'round' },
          y: { field: 'epsilon', type: 'quantitative', title: 'epsilon' },
          color: { field: 'ledger', type: 'nominal' },
        },
      },
      {
        data: { values: budgets },
        mark: { type: 'rule', strokeDash: [6, 4] },
        encoding: { y: { field: 'budget', type: 'quantitative' }, color: { field: 'ledger', type: 'nominal' } },
      },
    ],
  } as TopLevelSpec;
}

/** Renders a Vega-Lite spec to an SVG string with vega's headless View. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function ledgerRow(l: LedgerSummary, role: string): string {
  const eps = l.epsilon === null ? '&infin;' : l.epsilon.toFixed(4);
  const budget = l.budget ? `${l.budget.epsilon} (&delta; ${l.budget.delta})` : '&mdash;';
  return `<tr><td>${role}</td><td>${escapeHtml(l.writer ?? '?')}</td><td>${escapeHtml(l.ledger)}</td><td>${l.entries}</td><td>${eps}</td><td>${l.delta ?? ''}</td><td>${budget}</td><td>${l.valid ? 'valid' : '<b>INVALID</b>'}</td></tr>`;
}

/** A self-contained HTML audit report: verdict, per-ledger table, epsilon chart, problems. */
export async function renderAuditHtml(report: AuditReport, generatedAt: string): Promise<string> {
  const svg = await renderSvg(epsilonChartSpec(report));
  const rows = [...(report.federation ? [ledgerRow(report.federation, 'federation')] : []), ...report.clients.map((c) => ledgerRow(c, 'institution'))];
  const problems = report.problems.length
    ? `<ul>${report.problems.map((p) => `<li><code>${escapeHtml(p.ledger)}</code>: ${escapeHtml(p.message)}</li>`).join('')}</ul>`
    : '<p>None.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedlora privacy audit</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#070}.bad{color:#b00}</style>
</head><body>
<h1>fedlora privacy audit</h1>
<p>Generated ${escapeHtml(generatedAt)}. Verdict: <b class="${report.valid ? 'ok' : 'bad'}">${report.valid ? 'VALID' : 'INVALID'}</b> (${report.entries} entries).
Every epsilon below is recomputed from the parameters recorded in the signed entries, not read from the files.</p>
<table><thead><tr><th>role</th><th>writer</th><th>ledger</th><th>entries</th><th>epsilon</th><th>delta</th><th>budget</th><th>status</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
<h2>Epsilon spent over rounds</h2>
${svg}
<h2>Problems</h2>
${problems}
</body></html>
`;
}
