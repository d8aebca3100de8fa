import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENESIS_HASH, Ledger, generateLedgerKey, lineHash, ledgerKeyFromSeed, writeTrustedKeys, type LedgerEntry, type LedgerRecordInput } from '@fedlora/privacy';
import { describe, expect, it } from 'vitest';
import { auditLedgers } from './audit-report.js';
import { formatAuditText } from './audit-text.js';
import { renderAuditHtml } from './html-report.js';

const bin = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const settings = { delta: 1e-5 };

const coordKey = ledgerKeyFromSeed(new Uint8Array(32).fill(1));
const clientKey = (i: number) => ledgerKeyFromSeed(new Uint8Array(32).fill(10 + i));
/** The auditor's trust anchor for the fixture (what `fedlora provision` writes as trusted-keys.json). */
const trustedKeys = { coordinator: coordKey.publicKey, alpha: clientKey(0).publicKey, beta: clientKey(1).publicKey };
const central = (noiseMultiplier: number) => ({ mode: 'central' as const, clipNorm: 1, noiseMultiplier, samplingRate: 1, survivors: 2 });

/**
 * Three rounds as the protocol writes them: each plan announces the federation ledger head, the
 * institutions record it and the round attempt with their release, the coordinator records the
 * attempt. With `abortedFirstAttemptOf`, that round's first attempt aborted (and was rerun).
 */
async function federation(o: { abortedFirstAttemptOf?: number } = {}): Promise<{ dir: string; paths: string[]; keysFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'audit-'));
  const coord = await Ledger.open(join(dir, 'federation.jsonl'), { writer: 'coordinator', secretKey: coordKey.secretKey, role: 'coordinator' }, settings);
  const clients = await Promise.all(['alpha', 'beta'].map(async (name, i) => Ledger.open(join(dir, `${name}.jsonl`), { writer: name, secretKey: clientKey(i).secretKey }, settings)));
  for (let round = 0; round < 3; round++) {
    if (o.abortedFirstAttemptOf === round) await coord.append({ kind: 'aborted', round, unit: 'institution', note: 'too few updates', attempt: `r${round}-first` });
    const federationHead = headOf(coord.path);
    expect(federationHead).toEqual(coord.head());
    const attempt = `r${round}-last`;
    for (const c of clients) await c.append({ kind: 'round', round, unit: 'institution', params: central(1.5), budget: { epsilon: 10, delta: 1e-5 }, attempt, federationHead });
    await coord.append({ kind: 'round', round, unit: 'institution', params: central(1.5), attempt });
  }
  const keysFile = join(dir, 'trusted-keys.json');
  writeTrustedKeys(keysFile, trustedKeys);
  return { dir, paths: [join(dir, 'federation.jsonl'), join(dir, 'alpha.jsonl'), join(dir, 'beta.jsonl')], keysFile };
}

/** Rewrites the federation ledger at path from `entries` (re-signed with `secretKey`), as a forger would. */
async function rewriteFederation(path: string, secretKey: Uint8Array, entries: LedgerRecordInput[]): Promise<void> {
  const tmp = join(mkdtempSync(join(tmpdir(), 'forged-')), 'federation.jsonl');
  const forged = await Ledger.open(tmp, { writer: 'coordinator', secretKey, role: 'coordinator' }, settings);
  for (const e of entries) await forged.append(e);
  writeFileSync(path, readFileSync(tmp, 'utf8'));
}

/** A ledger file's head computed from its bytes (entries, SHA-256 of the last line). */
function headOf(path: string): { entries: number; hash: string } {
  const ls = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '') : [];
  return { entries: ls.length, hash: ls.length ? lineHash(ls[ls.length - 1]!) : GENESIS_HASH };
}

const entriesOf = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as LedgerEntry);
const asInput = (e: LedgerEntry): LedgerRecordInput => ({ kind: e.kind, round: e.round, unit: e.unit, ...(e.params ? { params: e.params } : {}), ...(e.note ? { note: e.note } : {}), ...(e.attempt ? { attempt: e.attempt } : {}) });

describe('auditLedgers', () => {
  it('reports the federation and every institution with recomputed epsilons', async () => {
    const { paths } = await federation();
    const report = auditLedgers(paths, { trustedKeys });
    expect(report.valid).toBe(true);
    expect(report.verdict).toBe('VALID');
    // Round 2's plan announced the federation ledger at 2 entries; both institutions recorded it.
    expect(report.anchoredHead).toEqual({ entries: 2, by: ['alpha', 'beta'] });
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
    const docs = await Ledger.open(join(dir, 'alpha-record.jsonl'), { writer: 'alpha', secretKey: clientKey(0).secretKey }, settings);
    await docs.append({ kind: 'round', round: 0, unit: 'document', params: dp });
    const patients = await Ledger.open(join(dir, 'beta-record.jsonl'), { writer: 'beta', secretKey: clientKey(1).secretKey }, settings);
    await patients.append({ kind: 'round', round: 0, unit: 'field', unitField: 'patient_id', params: dp });
    const report = auditLedgers([...paths, docs.path, patients.path], { trustedKeys });
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
    const report = auditLedgers(paths, { trustedKeys });
    expect(report.verdict).toBe('INVALID');
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/entry 2: alpha records a release in round 2 \(attempt r2-last…\) that .* has no entry for/);
  });

  it('renders an HTML report with an SVG chart', async () => {
    const { paths } = await federation();
    const html = await renderAuditHtml(auditLedgers(paths, { trustedKeys }), '2026-01-01T00:00:00Z');
    expect(html).toContain('<svg');
    expect(html).toContain('VALID');
    expect(html).toContain('alpha');
    // One labelled point per released round, with the mechanism on hover; integer round ticks only.
    expect(html).toMatch(/<title>alpha, round 1: epsilon \d+\.\d{4}[^<]*noise [^<]*<\/title>/);
    expect(html).not.toMatch(/<text[^>]*>1\.[2468]<\/text>/);
    expect(html).toContain('Share of each budget spent');
    // The privacy unit stands beside every epsilon in the table (issue 12 §1).
    expect(html).toMatch(/<th>epsilon<\/th><th>unit<\/th>/);
    expect(html).toMatch(/<td>\d+\.\d{4}<\/td><td>per institution<\/td>/);
  });

  it('the spawned `fedlora audit` exits 0 on valid ledgers and non-zero after a flipped byte, with one JSON document', async () => {
    const { dir, paths, keysFile } = await federation();
    const ok = spawnSync(process.execPath, [bin, 'audit', ...paths, '--trusted-keys', keysFile, '--json', '--html', join(dir, 'r.html')], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, verdict: 'VALID', entries: 9, problems: [] });
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('<svg');
    const text = readFileSync(paths[2]!, 'utf8');
    const i = text.indexOf('"noiseMultiplier":1.5');
    writeFileSync(paths[2]!, `${text.slice(0, i)}"noiseMultiplier":2.5${text.slice(i + 21)}`);
    const bad = spawnSync(process.execPath, [bin, 'audit', ...paths, '--trusted-keys', keysFile, '--json'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    const report = JSON.parse(bad.stdout) as { valid: boolean; problems: Array<{ ledger: string; message: string }> };
    expect(report.valid).toBe(false);
    expect(report.problems[0]!.ledger).toBe(paths[2]);
    expect(report.problems[0]!.message).toMatch(/entry 0 \(line 1\): signature/);
  });
});

describe('auditLedgers against a forger (issue 16, finding 9)', () => {
  it('says UNVERIFIED, never VALID, without trusted keys; the spawned audit exits 3', async () => {
    const { paths } = await federation();
    const report = auditLedgers(paths);
    expect(report).toMatchObject({ valid: false, verdict: 'UNVERIFIED', trustedKeys: false, problems: [] });
    expect(formatAuditText(report)).toMatch(/audit: UNVERIFIED \(no --trusted-keys/);
    const r = spawnSync(process.execPath, [bin, 'audit', ...paths, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, verdict: 'UNVERIFIED' });
  });

  it('does not pass a federation ledger re-signed with a fresh key and noise multiplier 50', async () => {
    const { paths } = await federation();
    const forgedEntries = entriesOf(paths[0]!).map((e) => ({ ...asInput(e), params: central(50) }));
    await rewriteFederation(paths[0]!, generateLedgerKey().secretKey, forgedEntries);
    // Alone and without trusted keys the forgery verifies internally (epsilon about 0.1): never VALID.
    const alone = auditLedgers([paths[0]!]);
    expect(alone.verdict).toBe('UNVERIFIED');
    expect(alone.federation!.epsilon!).toBeLessThan(0.2);
    // With the trusted keys: its key is not the coordinator's.
    const keyed = auditLedgers([paths[0]!], { trustedKeys });
    expect(keyed.verdict).toBe('INVALID');
    expect(keyed.problems[0]!.message).toMatch(/writer coordinator is not signed with its trusted key/);
    // With the institutions' ledgers, even without keys: the heads they saw are not in it.
    const withClients = auditLedgers(paths);
    expect(withClients.verdict).toBe('INVALID');
    expect(withClients.problems.map((p) => p.message).join('\n')).toMatch(/entry 1: alpha saw a federation ledger whose entry 0 hashes to .* the federation ledger was rewritten or forked/);
  });

  it('catches the federation ledger truncated to two lines', async () => {
    const { paths, keysFile } = await federation();
    const fullHead = headOf(paths[0]!);
    const ls = readFileSync(paths[0]!, 'utf8').trimEnd().split('\n');
    writeFileSync(paths[0]!, `${ls.slice(0, 2).join('\n')}\n`);
    const r = spawnSync(process.execPath, [bin, 'audit', ...paths, '--trusted-keys', keysFile, '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    const report = JSON.parse(r.stdout) as { verdict: string; problems: Array<{ message: string }> };
    expect(report.verdict).toBe('INVALID');
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/alpha records a release in round 2 .* has no entry for/);
    // Alone, with a head known out of band (--head): caught too.
    const alone = spawnSync(process.execPath, [bin, 'audit', paths[0]!, '--trusted-keys', keysFile, '--head', `${fullHead.entries}:${fullHead.hash}`], { encoding: 'utf8' });
    expect(alone.status).toBe(2);
    expect(alone.stdout).toMatch(/--head: the auditor saw the federation ledger at 3 entries \(--head\), but .* has only 2: the federation ledger was truncated/);
    expect(alone.stdout).toMatch(/audit: INVALID/);
  });

  it('catches a ledger truncated before a head an institution saw', async () => {
    const { paths } = await federation();
    const ls = readFileSync(paths[0]!, 'utf8').trimEnd().split('\n');
    writeFileSync(paths[0]!, `${ls.slice(0, 1).join('\n')}\n`);
    const report = auditLedgers(paths, { trustedKeys });
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/entry 2: alpha saw the federation ledger at 2 entries in round 2, but .* has only 1: the federation ledger was truncated/);
  });

  it('an aborted attempt of a round does not mask its removed completed attempt, even re-signed with the trusted key', async () => {
    const { paths } = await federation({ abortedFirstAttemptOf: 2 });
    // The coordinator (it holds its key) drops round 2's completed entry and keeps the aborted attempt.
    const kept = entriesOf(paths[0]!).filter((e) => !(e.round === 2 && e.kind === 'round'));
    expect(kept.map((e) => `${e.round}:${e.kind}`)).toEqual(['0:round', '1:round', '2:aborted']);
    await rewriteFederation(paths[0]!, coordKey.secretKey, kept.map(asInput));
    const report = auditLedgers(paths, { trustedKeys });
    expect(report.verdict).toBe('INVALID');
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/alpha records a release in round 2 \(attempt r2-last…\) that .* has no entry for/);
  });
});
