import { formatTable } from '../output.js';
import type { AuditReport } from './audit-report.js';

/**
 * The human-readable audit report: one row per ledger, then problems and the verdict. Every
 * epsilon is printed with its privacy unit ("3.1 per patient_id", "per document", "per institution").
 */
export function formatAuditText(report: AuditReport): string {
  const rows = [...(report.federation ? [{ role: 'federation', l: report.federation }] : []), ...report.clients.map((l) => ({ role: l.unit === 'institution' ? 'institution' : 'record-level', l }))];
  let out = `${formatTable(
    ['role', 'writer', 'entries', 'epsilon', 'unit', 'delta', 'budget', 'status'],
    rows.map(({ role, l }) => [role, l.writer ?? '?', l.entries, l.epsilon ?? 'inf', l.unitLabel ? `per ${l.unitLabel}` : '?', l.delta ?? '', l.budget ? l.budget.epsilon : '-', l.valid ? 'valid' : 'INVALID']),
  )}\n`;
  for (const p of report.problems) out += `problem: ${p.ledger}: ${p.message}\n`;
  if (report.federation) {
    out += report.anchoredHead
      ? `federation ledger: its first ${report.anchoredHead.entries} entries are the ones ${report.anchoredHead.by.join(', ')} saw\n`
      : 'federation ledger: no institution ledger or --head anchors its head: entries cut off its end would not show\n';
  }
  if (report.verdict === 'UNVERIFIED') {
    out += 'audit: UNVERIFIED (no --trusted-keys: each ledger was checked only against the key written inside it, which whoever rewrites it can replace)\n';
  } else out += `audit: ${report.verdict}\n`;
  return out;
}
