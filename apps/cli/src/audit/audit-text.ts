import { formatTable } from '../output.js';
import type { AuditReport } from './audit-report.js';

/** The human-readable audit report: one row per ledger, then problems and the verdict. */
export function formatAuditText(report: AuditReport): string {
  const rows = [...(report.federation ? [{ role: 'federation', l: report.federation }] : []), ...report.clients.map((l) => ({ role: l.unit === 'record' ? 'records' : 'institution', l }))];
  let out = `${formatTable(
    ['role', 'writer', 'entries', 'epsilon', 'delta', 'budget', 'status'],
    rows.map(({ role, l }) => [role, l.writer ?? '?', l.entries, l.epsilon ?? 'inf', l.delta ?? '', l.budget ? l.budget.epsilon : '-', l.valid ? 'valid' : 'INVALID']),
  )}\n`;
  for (const p of report.problems) out += `problem: ${p.ledger}: ${p.message}\n`;
  out += report.valid ? 'audit: VALID\n' : 'audit: INVALID\n';
  return out;
}
