import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ledger, generateLedgerKey } from '@fedlora/privacy';
import { openSqliteStore } from '@fedlora/store';
import { checkLedgerAgainstStore } from './federation-privacy.js';

/** A federation ledger of three rounds, each line also committed to a real SQLite store, as the coordinator does. */
async function anchored() {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-anchor-'));
  const path = join(dir, 'federation-ledger.jsonl');
  const key = generateLedgerKey().secretKey;
  const ledger = await Ledger.open(path, { writer: 'coordinator', secretKey: key, role: 'coordinator' }, { delta: 1e-5 });
  const store = openSqliteStore(join(dir, 'fedlora.db'));
  for (let round = 1; round <= 3; round++) {
    const entry = await ledger.append({ kind: 'round', round, unit: 'institution', params: { mode: 'central', clipNorm: 1, noiseMultiplier: 1, samplingRate: 1, survivors: 3 } });
    store.appendLedger(JSON.stringify(entry), round);
  }
  return { path, key, store, lines: () => store.listLedger().map((e) => e.line) };
}

describe('the federation ledger anchored in the store (issue 16, finding 9)', () => {
  it('accepts the file the store committed', async () => {
    const a = await anchored();
    expect(checkLedgerAgainstStore(a.path, a.lines())).toEqual([]);
    a.store.close();
  });

  it('refuses a file cut to two lines', async () => {
    const a = await anchored();
    const ls = readFileSync(a.path, 'utf8').trimEnd().split('\n');
    writeFileSync(a.path, `${ls.slice(0, 2).join('\n')}\n`);
    expect(() => checkLedgerAgainstStore(a.path, a.lines())).toThrow(/has 2 entries but the store committed 3: the federation ledger was truncated/);
    a.store.close();
  });

  it('refuses a file rewritten with the same key (a fork of its history)', async () => {
    const a = await anchored();
    const ls = readFileSync(a.path, 'utf8').trimEnd().split('\n');
    const forkPath = join(mkdtempSync(join(tmpdir(), 'fork-')), 'l.jsonl');
    const fork = await Ledger.open(forkPath, { writer: 'coordinator', secretKey: a.key, role: 'coordinator' }, { delta: 1e-5 });
    for (let round = 1; round <= 3; round++) await fork.append({ kind: 'round', round, unit: 'institution', params: { mode: 'central', clipNorm: 1, noiseMultiplier: 50, samplingRate: 1, survivors: 3 } });
    writeFileSync(a.path, readFileSync(forkPath, 'utf8'));
    expect(ls).toHaveLength(3);
    expect(() => checkLedgerAgainstStore(a.path, a.lines())).toThrow(/entry 0 differs from the line the store committed: the federation ledger was rewritten or forked/);
    a.store.close();
  });

  it('returns the line a crash left in the file but not in the store', async () => {
    const a = await anchored();
    const lines = a.lines();
    expect(checkLedgerAgainstStore(a.path, lines.slice(0, 2))).toEqual([lines[2]]);
    a.store.close();
  });
});
