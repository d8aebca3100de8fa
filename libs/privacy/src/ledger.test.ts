import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ledger, LedgerCorruptError, repairTornTail } from './ledger.js';
import { canonicalJson, ledgerKeyFromSeed, signEntry, type LedgerEntry } from './ledger-format.js';
import { verifyLedger, verifyLedgerFile } from './ledger-verify.js';
import type { RoundPrivacyParams } from './round-events.js';

const key = ledgerKeyFromSeed(new Uint8Array(32).fill(7));
const other = ledgerKeyFromSeed(new Uint8Array(32).fill(9));
const settings = { delta: 1e-5, orders: 'dp-accounting' as const };

const skellamRound = (survivors: number): RoundPrivacyParams => ({
  mode: 'distributed',
  noise: 'skellam',
  clipNorm: 1,
  scale: 100,
  perClientVariance: 2000,
  l1Sensitivity: 1000,
  l2Sensitivity: 110,
  dimension: 100,
  samplingRate: 1,
  survivors,
  secureAggregation: true,
});

async function writeLedger(rounds = 4): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-'));
  const path = join(dir, 'federation.jsonl');
  const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, settings);
  for (let r = 0; r < rounds; r++) {
    if (r === 2) await ledger.append({ kind: 'aborted', round: r, unit: 'institution', note: 'secagg: too few survivors' });
    else await ledger.append({ kind: 'round', round: r, unit: 'institution', params: skellamRound(5 - (r % 2)), budget: { epsilon: 50, delta: 1e-5 } });
  }
  return path;
}

const lines = (path: string): string[] => readFileSync(path, 'utf8').trimEnd().split('\n');

describe('Ledger', () => {
  it('writes a chain that verifies and recomputes the same epsilon', async () => {
    const path = await writeLedger();
    const v = verifyLedgerFile(path, { trustedKeys: { coordinator: key.publicKey } });
    const base64 = Buffer.from(key.publicKey, 'hex').toString('base64');
    expect(verifyLedgerFile(path, { trustedKeys: { coordinator: base64 } }).valid).toBe(true);
    expect(v.problems).toEqual([]);
    expect(v.valid).toBe(true);
    expect(v.entries).toBe(4);
    expect(v.role).toBe('coordinator');
    const last = JSON.parse(lines(path)[3]!) as LedgerEntry;
    expect(v.epsilon).toBe(last.epsilon);
    expect(v.rounds.map((r) => r.kind)).toEqual(['round', 'round', 'aborted', 'round']);
    expect(v.rounds[2]!.epsilon).toBe(v.rounds[1]!.epsilon); // an aborted round spends nothing
  });

  it('accounts distributed noise for the survivors actually summed', async () => {
    const path = await writeLedger(2);
    const [e0, e1] = lines(path).map((l) => JSON.parse(l) as LedgerEntry);
    expect(e0!.events[0]).toMatchObject({ mechanism: 'skellam', variance: 5 * 2000 });
    expect(e1!.events[0]).toMatchObject({ mechanism: 'skellam', variance: 4 * 2000 });
  });

  it('continues an existing ledger after reopening', async () => {
    const path = await writeLedger(2);
    const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, settings);
    expect(ledger.length).toBe(2);
    await ledger.append({ kind: 'round', round: 2, unit: 'institution', params: skellamRound(5) });
    expect(verifyLedgerFile(path).valid).toBe(true);
  });

  it('flipping one byte makes verification fail naming the entry', async () => {
    const path = await writeLedger();
    const text = readFileSync(path, 'utf8');
    const at = text.indexOf('"survivors":4');
    writeFileSync(path, `${text.slice(0, at)}"survivors":3${text.slice(at + 13)}`);
    const v = verifyLedgerFile(path);
    expect(v.valid).toBe(false);
    expect(v.problems[0]!.message).toMatch(/^entry 1 \(line 2\): signature/);
  });

  it('deleting a line makes verification fail naming the entry', async () => {
    const path = await writeLedger();
    const ls = lines(path);
    writeFileSync(path, `${[ls[0], ls[2], ls[3]].join('\n')}\n`);
    const v = verifyLedgerFile(path);
    expect(v.valid).toBe(false);
    expect(v.problems.some((p) => /entry 2 \(line 2\): seq is 2, expected 1/.test(p.message))).toBe(true);
  });

  it('swapping two lines makes verification fail naming the entries', async () => {
    const path = await writeLedger();
    const ls = lines(path);
    writeFileSync(path, `${[ls[0], ls[2], ls[1], ls[3]].join('\n')}\n`);
    const v = verifyLedgerFile(path);
    expect(v.valid).toBe(false);
    expect(v.problems.some((p) => p.seq === 2 && /line 2/.test(p.message))).toBe(true);
  });

  it('a signature by another key, or an untrusted writer, fails', async () => {
    const path = await writeLedger(2);
    const ls = lines(path);
    const e1 = JSON.parse(ls[1]!) as LedgerEntry;
    const forged = { ...e1, signature: signEntry({ ...e1, signature: undefined } as never, other.secretKey) };
    writeFileSync(path, `${ls[0]}\n${JSON.stringify(forged)}\n`);
    expect(verifyLedgerFile(path).problems[0]!.message).toMatch(/entry 1 .*signature/);
    writeFileSync(path, `${ls[0]}\n`);
    expect(verifyLedgerFile(path, { trustedKeys: { coordinator: other.publicKey } }).valid).toBe(false);
  });

  it('a correctly signed but mis-accounted entry fails', async () => {
    const path = await writeLedger(1);
    const e0 = JSON.parse(lines(path)[0]!) as LedgerEntry;
    const events = [{ ...e0.events[0]!, variance: 1e9 }];
    const { signature: _s, ...rest } = { ...e0, events };
    const resigned = { ...rest, signature: signEntry(rest as never, key.secretKey) };
    writeFileSync(path, `${JSON.stringify(resigned)}\n`);
    const v = verifyLedgerFile(path);
    expect(v.problems.map((p) => p.message).join('\n')).toMatch(/entry 0 .*mis-accounted/);
  });

  it('a truncated last line is reported and refused on open, never silently accepted', async () => {
    const path = await writeLedger(2);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, text.length - 40));
    const v = verifyLedger(path);
    expect(v.valid).toBe(false);
    expect(v.problems[0]!.message).toMatch(/line 2: truncated last line/);
    await expect(Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, settings)).rejects.toThrow(LedgerCorruptError);
  });

  it('repairTornTail truncates only a torn last line, keeps the bytes, and the ledger continues', async () => {
    const path = await writeLedger(2);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, text.length - 40));
    const r = await repairTornTail(path);
    expect(r.repaired).toBe(true);
    expect(readFileSync(r.savedTo!, 'utf8').length).toBe(r.removedBytes);
    expect(verifyLedgerFile(path).entries).toBe(1);
    const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, settings);
    await ledger.append({ kind: 'round', round: 1, unit: 'institution', params: skellamRound(5) });
    expect(verifyLedgerFile(path).valid).toBe(true);
  });

  it('repairTornTail leaves a tampered ledger alone', async () => {
    const path = await writeLedger(3);
    const ls = lines(path);
    writeFileSync(path, `${[ls[0], ls[2], ls[1]].join('\n')}\n`);
    const r = await repairTornTail(path);
    expect(r.repaired).toBe(false);
    expect(r.problems.length).toBeGreaterThan(0);
  });

  it('an appended garbage line is reported', async () => {
    const path = await writeLedger(1);
    appendFileSync(path, '{"seq":1,\n');
    expect(verifyLedgerFile(path).problems[0]!.message).toMatch(/line 2: not a valid JSON entry/);
  });

  it('keeps one privacy unit per ledger', async () => {
    const path = await writeLedger(1);
    const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key.secretKey, role: 'coordinator' }, settings);
    await expect(ledger.append({ kind: 'round', round: 1, unit: 'document', params: { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.01, steps: 10 } })).rejects.toThrow(/one ledger per privacy unit/);
  });

  it('canonical JSON sorts keys recursively', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}');
  });
});
