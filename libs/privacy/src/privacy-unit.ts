/**
 * The privacy unit: whose data one epsilon protects. Differential privacy bounds what a release
 * reveals about the data of ONE unit, so the unit must be the one a data owner means (Chua et al.
 * 2024, "Mind the Privacy Unit! User-Level Differential Privacy for Language Model Fine-Tuning").
 *
 * - `institution`: institution-level DP-FedAvg (McMahan et al. 2018): one client's whole update.
 * - `document`: record-level DP-SGD where one text-file line or one JSONL record is the unit; all
 *   the training sequences cut from it are sampled and clipped together.
 * - `field`: user-level DP-SGD inside an institution: all records with the same value of a field
 *   (for example `patient_id`) form one unit.
 * - `sequence`: one packed training sequence (weaker: a document spanning k sequences is protected
 *   only at group-privacy cost k); only when asked for.
 * - `record`: what ledgers written before units existed recorded for DP-SGD; it meant one packed
 *   training sequence. Kept readable, never written.
 */

/** A privacy unit as a ledger records it. */
export type PrivacyUnit = 'institution' | 'document' | 'field' | 'sequence' | 'record';

/** The record-level units DP-SGD can protect. */
export type RecordUnit = 'document' | 'field' | 'sequence';

/** Units a new ledger entry may name (`record` is legacy, read but never written). */
export const WRITABLE_UNITS: readonly PrivacyUnit[] = ['institution', 'document', 'field', 'sequence'];

/** Throws unless `unit` (with `unitField` for `field`) is a unit a ledger may record. */
export function validateUnit(unit: unknown, unitField: unknown, what = 'unit'): void {
  if (!WRITABLE_UNITS.includes(unit as PrivacyUnit)) throw new RangeError(`${what} must be one of ${WRITABLE_UNITS.join(', ')}, received ${JSON.stringify(unit)}`);
  if (unit === 'field' && (typeof unitField !== 'string' || unitField === '')) throw new RangeError(`${what} "field" needs the field's name (unitField, e.g. "patient_id"), received ${JSON.stringify(unitField)}`);
  if (unit !== 'field' && unitField !== undefined) throw new RangeError(`unitField is only for the "field" unit, received ${JSON.stringify(unitField)} with ${JSON.stringify(unit)}`);
}

/**
 * The unit as it is printed beside an epsilon: "epsilon 3.1 per patient_id", "per document",
 * "per institution". A legacy `record` ledger protected one training sequence.
 */
export function unitLabel(unit: PrivacyUnit | undefined, unitField?: string): string {
  if (unit === 'field') return unitField ?? 'field';
  if (unit === 'record') return 'sequence (legacy record unit)';
  return unit ?? 'unknown unit';
}
