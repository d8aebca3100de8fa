import type { PrivacyUnitSpec } from '@fedlora/train';
import { ClientPrivacyGuard } from '@fedlora/privacy';

type GuardUnit = Parameters<typeof ClientPrivacyGuard.open>[0]['unit'];

/** A budget (epsilon at delta) and where its signed ledger lives. */
export interface GuardSpec {
  ledgerPath: string;
  epsilon: number;
  delta: number;
}

/** Options of `openClientGuards`: an institution's two budgets, each optional. */
export interface ClientGuardsOptions {
  /** The institution's name: the writer of both ledgers. */
  name: string;
  /** The institution's signing key (its enrolled identity): one key for both ledgers, as the audit requires. */
  secretKey: Uint8Array;
  /** Institution-level DP-FedAvg budget. */
  institution?: GuardSpec;
  /** Record-level DP-SGD budget, for the privacy unit the data is grouped by. */
  record?: GuardSpec & { unit: PrivacyUnitSpec };
}

/**
 * Opens an institution's privacy guards: the one place where a client's budgets become
 * ClientPrivacyGuards (their ledgers resume what was spent), for `fedlora client` and `simulate` alike.
 */
export async function openClientGuards(o: ClientGuardsOptions): Promise<{ institution?: ClientPrivacyGuard; record?: ClientPrivacyGuard }> {
  const open = (spec: GuardSpec, unit: GuardUnit, unitField?: string) =>
    ClientPrivacyGuard.open({
      ledgerPath: spec.ledgerPath,
      signer: { writer: o.name, secretKey: o.secretKey },
      budget: { epsilon: spec.epsilon, delta: spec.delta },
      unit,
      ...(unitField ? { unitField } : {}),
    });
  const institution = o.institution ? await open(o.institution, 'institution') : undefined;
  const record = o.record ? await open(o.record, o.record.unit.unit, o.record.unit.field) : undefined;
  return { ...(institution ? { institution } : {}), ...(record ? { record } : {}) };
}
