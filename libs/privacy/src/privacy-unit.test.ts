import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClientPrivacyGuard } from './client-guard.js';
import { Ledger } from './ledger.js';
import { ledgerKeyFromSeed, signEntry, type LedgerEntry } from './ledger-format.js';
import { verifyLedgerFile, verifyLedgerText } from './ledger-verify.js';
import { unitLabel, validateUnit } from './privacy-unit.js';
import type { DpSgdParams } from './round-events.js';

const key = ledgerKeyFromSeed(new Uint8Array(32).fill(3));
const dpSgd: DpSgdParams = { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.05, steps: 20 };
const tmp = (): string => join(mkdtempSync(join(tmpdir(), 'unit-')), 'ledger.jsonl');

describe('privacy units', () => {
  it('labels a field unit by the field, the others by their name', () => {
    expect(unitLabel('field', 'patient_id')).toBe('patient_id');
    expect(unitLabel('document')).toBe('document');
    expect(unitLabel('institution')).toBe('institution');
    expect(unitLabel('record')).toMatch(/sequence/);
  });

  it('refuses a field unit without its field, a field name on another unit, and the legacy record unit for new entries', () => {
    expect(() => validateUnit('field', undefined)).toThrow(/needs the field's name/);
    expect(() => validateUnit('document', 'patient_id')).toThrow(/only for the "field" unit/);
    expect(() => validateUnit('record', undefined)).toThrow(/must be one of institution, document, field, sequence/);
  });

  it('records a field unit with its field name; the verifier reports it and refuses a ledger that changes field', async () => {
    const path = tmp();
    const guard = await ClientPrivacyGuard.open({ ledgerPath: path, signer: { writer: 'hospital-a', secretKey: key.secretKey }, budget: { epsilon: 8, delta: 1e-5 }, unit: 'field', unitField: 'patient_id' });
    expect(guard.unitLabel).toBe('patient_id');
    await guard.record(1, dpSgd);
    const v = verifyLedgerFile(path);
    expect(v.valid).toBe(true);
    expect([v.unit, v.unitField, v.unitLabel]).toEqual(['field', 'patient_id', 'patient_id']);
    const ledger = await Ledger.open(path, { writer: 'hospital-a', secretKey: key.secretKey }, { delta: 1e-5 });
    await expect(ledger.append({ kind: 'round', round: 2, unit: 'field', unitField: 'visit_id', params: dpSgd })).rejects.toThrow(/accounts the patient_id unit, received an entry for visit_id/);
  });

  it('still verifies a ledger written before units existed (unit "record": one training sequence)', async () => {
    // The accounting fields come from a real entry of the same event; the legacy entry is signed like any other.
    const real = await Ledger.open(tmp(), { writer: 'hospital-a', secretKey: key.secretKey }, { delta: 1e-5 });
    const { signature: _drop, ...e } = await real.append({ kind: 'round', round: 1, unit: 'sequence', params: dpSgd });
    const legacy: Omit<LedgerEntry, 'signature'> = { ...e, unit: 'record' };
    const line = JSON.stringify({ ...legacy, signature: signEntry(legacy, key.secretKey) });
    const v = verifyLedgerText(`${line}\n`);
    expect(v.problems).toEqual([]);
    expect(v.unitLabel).toMatch(/sequence/);
  });
});
