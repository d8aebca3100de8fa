import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ledger, ledgerKeyFromSeed } from '@fedlora/privacy';
import { describe, expect, it } from 'vitest';
import { auditLedgers } from './audit-report.js';
import { formatAuditText } from './audit-text.js';
import { renderAuditHtml } from './html-report.js';

const bin = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const settings = { delta: 1e-5 };

async function federation(): Promise<{ dir: string; paths: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'audit-'));
  const coordKey = ledgerKeyFromSeed(new Uint8Array(32).fill(1));
  const coord = await Ledger.open(join(dir, 'federation.jsonl'), { writer: 'coordinator', secretKey: coordKey.secretKey, role: 'coordinator' }, settings);
  const clients = await Promise.all(
    ['alpha', 'beta'].map(async (name, i) =>
      Ledger.open(join(dir, `${name}.jsonl`), { writer: name, secretKey: ledgerKeyFromSeed(new Uint8Array(32).fill(10 + i)).secretKey }, settings),
    ),
  );
  for (let round = 0; round < 3; round++) {
    const params = { mode: 'central' as const, clipNorm: 1, noiseMultiplier: 1.5, samplingRate: 1, survivors: 2 };
    await coord.append({ kind: 'round', round, unit: 'institution', params });
    for (const c of clients) await c.append({ kind: 'round', round, unit: 'institution', params, budget: { epsilon: 10, delta: 1e-5 } });
  }
  return { dir, paths: [join(dir, 'federation.jsonl'), join(dir, 'alpha.jsonl'), join(dir, 'beta.jsonl')] };
}

describe('auditLedgers', () => {
  it('reports the federation and every institution with recomputed epsilons', async () => {
    const { paths } = await federation();
    const report = auditLedgers(paths);
    expect(report.valid).toBe(true);
    expect(report.entries).toBe(9);
    expect(report.federation?.writer).toBe('coordinator');
    expect(report.clients.map((c) => c.writer)).toEqual(['alpha', 'beta']);
    expect(report.clients[0]!.rounds).toHaveLength(3);
    expect(report.clients[0]!.epsilon).toBeGreaterThan(0);
    expect(report.clients[0]!.budget).toEqual({ epsilon: 10, delta: 1e-5 });
  });

  it('prints the privacy unit beside every epsilon: per institution, per document, per patient_id', async () => {
    const { dir, paths } = await federation();
    const dp = { mode: 'dp-sgd' as const, clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.05, steps: 30 };
    const key = (n: number) => ledgerKeyFromSeed(new Uint8Array(32).fill(n)).secretKey;
    const docs = await Ledger.open(join(dir, 'alpha-record.jsonl'), { writer: 'alpha', secretKey: key(10) }, settings);
    await docs.append({ kind: 'round', round: 0, unit: 'document', params: dp });
    const patients = await Ledger.open(join(dir, 'beta-record.jsonl'), { writer: 'beta', secretKey: key(11) }, settings);
    await patients.append({ kind: 'round', round: 0, unit: 'field', unitField: 'patient_id', params: dp });
    const report = auditLedgers([...paths, docs.path, patients.path]);
    expect(report.valid).toBe(true);
    expect([report.federation!.unitLabel, ...report.clients.map((c) => c.unitLabel)]).toEqual(['institution', 'institution', 'institution', 'document', 'patient_id']);
    const text = formatAuditText(report);
    expect(text).toMatch(/record-level +beta +1 +[\d.]+ +per patient_id/);
    expect(text).toMatch(/record-level +alpha +1 +[\d.]+ +per document/);
    expect(text).toMatch(/federation +coordinator +3 +[\d.]+ +per institution/);
  });

  it('names the tampered entry and its ledger', async () => {
    const { paths } = await federation();
    const ls = readFileSync(paths[1]!, 'utf8').trimEnd().split('\n');
    writeFileSync(paths[1]!, `${[ls[1], ls[0], ls[2]].join('\n')}\n`);
    const report = auditLedgers(paths);
    expect(report.valid).toBe(false);
    expect(report.problems[0]).toMatchObject({ ledger: paths[1] });
    expect(report.problems[0]!.message).toMatch(/entry 1 \(line 1\)/);
  });

  it('detects a federation ledger whose last entry was cut off, through the institutions\' ledgers', async () => {
    const { paths } = await federation();
    const ls = readFileSync(paths[0]!, 'utf8').trimEnd().split('\n');
    writeFileSync(paths[0]!, `${ls.slice(0, 2).join('\n')}\n`);
    const report = auditLedgers(paths);
    expect(report.valid).toBe(false);
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/entry 2: alpha records a release in round 2 that the federation ledger .* has no entry for/);
  });

  it('renders an HTML report with an SVG chart', async () => {
    const { paths } = await federation();
    const html = await renderAuditHtml(auditLedgers(paths), '2026-01-01T00:00:00Z');
    expect(html).toContain('<svg');
    expect(html).toContain('VALID');
    expect(html).toContain('alpha');
    // One labelled point per released round, with the mechanism on hover; integer round ticks only.
    expect(html).toMatch(/<title>alpha, round 1: epsilon \d+\.\d{4}[^<]*noise [^<]*<\/title>/);
    expect(html).not.toMatch(/<text[^>]*>1\.[2468]<\/text>/);
    expect(html).toContain('Share of each budget spent');
  });

  it('the spawned `fedlora audit` exits 0 on valid ledgers and non-zero after a flipped byte, with one JSON document', async () => {
    const { dir, paths } = await federation();
    const ok = spawnSync(process.execPath, [bin, 'audit', ...paths, '--json', '--html', join(dir, 'r.html')], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, entries: 9, problems: [] });
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('<svg');
    const text = readFileSync(paths[2]!, 'utf8');
    const i = text.indexOf('"noiseMultiplier":1.5');
    writeFileSync(paths[2]!, `${text.slice(0, i)}"noiseMultiplier":2.5${text.slice(i + 21)}`);
    const bad = spawnSync(process.execPath, [bin, 'audit', ...paths, '--json'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    const report = JSON.parse(bad.stdout) as { valid: boolean; problems: Array<{ ledger: string; message: string }> };
    expect(report.valid).toBe(false);
    expect(report.problems[0]!.ledger).toBe(paths[2]);
    expect(report.problems[0]!.message).toMatch(/entry 0 \(line 1\): signature/);
  });
});
