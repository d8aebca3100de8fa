import type { PlannedLora, PlannedTraining, PlanParts, RoundPlan, SecureRoundPlan } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import type { EncodingParams } from '@fedlora/secagg';

/**
 * The typed parts of a round plan on the wire: one JSON object (RoundPlan.extra_json) with the
 * keys that fedlora has always used there, so that older peers read newer plans and the reverse:
 * seqLen, lora, proximalMu and plannedRounds (plan.training), privacy, secagg, and attempt. Unknown keys are
 * ignored (a newer coordinator may add some); known keys are checked and typed here, once.
 */

type Json = Record<string, unknown>;

function bad(message: string): FederationError {
  return new FederationError('invalid-argument', message);
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(o: Json, key: string, field: string, check: (x: number) => boolean = Number.isFinite, optional = false): number | undefined {
  const v = o[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'number' || !check(v)) throw bad(`${field}.${key} must be ${optional ? 'absent or ' : ''}a valid number, received ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

const positiveInt = (x: number) => Number.isSafeInteger(x) && x >= 1;

/** The JSON object that carries a plan's typed parts and its attempt number. */
export function planPartsToJson(p: RoundPlan): Json {
  const t = p.training ?? {};
  return {
    ...(t.seqLen !== undefined ? { seqLen: t.seqLen } : {}),
    ...(t.lora !== undefined ? { lora: t.lora } : {}),
    ...(t.proximalMu !== undefined ? { proximalMu: t.proximalMu } : {}),
    ...(t.plannedRounds !== undefined ? { plannedRounds: t.plannedRounds } : {}),
    ...(p.privacy ? { privacy: p.privacy } : {}),
    ...(p.secagg ? { secagg: p.secagg } : {}),
    ...(p.ledgerHead ? { ledgerHead: p.ledgerHead } : {}),
    attempt: p.attempt,
  };
}

/** The typed parts (and attempt) of a plan from its JSON object; throws invalid-argument naming the bad field. */
export function planPartsFromJson(o: Json): PlanParts & Pick<RoundPlan, 'secagg'> & { attempt: number } {
  const attempt = o.attempt === undefined ? 1 : num(o, 'attempt', 'plan', positiveInt)!;
  const training: PlannedTraining = {};
  if (o.seqLen !== undefined) training.seqLen = num(o, 'seqLen', 'plan', positiveInt);
  if (o.proximalMu !== undefined) training.proximalMu = num(o, 'proximalMu', 'plan', (x) => Number.isFinite(x) && x >= 0);
  if (o.plannedRounds !== undefined) training.plannedRounds = num(o, 'plannedRounds', 'plan', positiveInt);
  if (o.lora !== undefined) training.lora = loraFromJson(o.lora);
  return {
    attempt,
    ...(Object.keys(training).length ? { training } : {}),
    ...(o.privacy !== undefined ? { privacy: privacyFromJson(o.privacy) } : {}),
    ...(o.secagg !== undefined ? { secagg: secaggFromJson(o.secagg) } : {}),
    ...(o.ledgerHead !== undefined ? { ledgerHead: ledgerHeadFromJson(o.ledgerHead) } : {}),
  };
}

/** The federation ledger head a plan announces: a count of entries and the hex SHA-256 of the last line. */
function ledgerHeadFromJson(v: unknown): NonNullable<RoundPlan['ledgerHead']> {
  if (!isObject(v)) throw bad('plan.ledgerHead must be a JSON object');
  const entries = num(v, 'entries', 'plan.ledgerHead', (x) => Number.isSafeInteger(x) && x >= 0)!;
  if (typeof v.hash !== 'string' || !/^[0-9a-f]{64}$/.test(v.hash)) throw bad('plan.ledgerHead.hash must be 64 hex digits');
  return { entries, hash: v.hash };
}

function loraFromJson(v: unknown): PlannedLora {
  if (!isObject(v)) throw bad('plan.lora must be a JSON object');
  const targets = v.targetModules;
  if (!Array.isArray(targets) || targets.length === 0 || targets.length > 256 || !targets.every((t) => typeof t === 'string' && t.length > 0 && t.length <= 256)) {
    throw bad('plan.lora.targetModules must be 1-256 module names');
  }
  return {
    r: num(v, 'r', 'plan.lora', positiveInt)!,
    alpha: num(v, 'alpha', 'plan.lora', (x) => x > 0)!,
    dropout: num(v, 'dropout', 'plan.lora', (x) => x >= 0 && x < 1)!,
    targetModules: targets as string[],
    ...(v.variant !== undefined ? { variant: loraVariantFromJson(v.variant) } : {}),
  };
}

function loraVariantFromJson(v: unknown): 'lora' | 'ffa' {
  if (v !== 'lora' && v !== 'ffa') throw bad(`plan.lora.variant must be "lora" or "ffa", received ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

/** Institution-level DP parameters: the field types here; plannedPrivacy checks their values (validateDpConfig). */
function privacyFromJson(v: unknown): NonNullable<RoundPlan['privacy']> {
  if (!isObject(v)) throw bad('plan.privacy must be a JSON object');
  if (v.mode !== 'central' && v.mode !== 'distributed') throw bad(`plan.privacy.mode must be "central" or "distributed", received ${JSON.stringify(v.mode)?.slice(0, 40)}`);
  if (typeof v.secureAggregation !== 'boolean') throw bad('plan.privacy.secureAggregation must be a boolean');
  if (v.noise !== undefined && v.noise !== 'skellam' && v.noise !== 'discrete_gaussian') throw bad('plan.privacy.noise must be "skellam" or "discrete_gaussian"');
  if (v.force !== undefined && typeof v.force !== 'boolean') throw bad('plan.privacy.force must be a boolean');
  const opt = (key: string) => num(v, key, 'plan.privacy', Number.isFinite, true);
  const optional = { samplingRate: opt('samplingRate'), scale: opt('scale'), minSurvivors: opt('minSurvivors'), countNoiseStd: opt('countNoiseStd'), countScale: opt('countScale') };
  return {
    mode: v.mode,
    clipNorm: num(v, 'clipNorm', 'plan.privacy')!,
    noiseMultiplier: num(v, 'noiseMultiplier', 'plan.privacy')!,
    delta: num(v, 'delta', 'plan.privacy')!,
    dimension: num(v, 'dimension', 'plan.privacy')!,
    secureAggregation: v.secureAggregation,
    ...(v.noise !== undefined ? { noise: v.noise } : {}),
    ...(v.force !== undefined ? { force: v.force } : {}),
    ...Object.fromEntries(Object.entries(optional).filter(([, x]) => x !== undefined)),
  };
}

const ENCODING_KEYS = ['dim', 'paddedDim', 'bits', 'scale', 'clip', 'roundedNormBound2', 'beta', 'noiseStddevInt', 'overflowProb', 'quantizationStd', 'n'] as const;

function secaggFromJson(v: unknown): SecureRoundPlan {
  if (!isObject(v)) throw bad('plan.secagg must be a JSON object');
  if (!isObject(v.ids) || !isObject(v.roster) || !isObject(v.encoding)) throw bad('plan.secagg must carry ids, roster and encoding objects');
  const ids: Record<string, number> = {};
  for (const [name, id] of Object.entries(v.ids)) {
    if (typeof id !== 'number' || !positiveInt(id)) throw bad(`plan.secagg.ids["${name.slice(0, 64)}"] must be a positive integer`);
    ids[name] = id;
  }
  const roster: Record<string, string> = {};
  for (const [name, key] of Object.entries(v.roster)) {
    if (typeof key !== 'string' || key.length > 128) throw bad(`plan.secagg.roster["${name.slice(0, 64)}"] must be a base64 public key`);
    roster[name] = key;
  }
  const enc = v.encoding;
  const encoding = Object.fromEntries(ENCODING_KEYS.map((k) => [k, num(enc, k, 'plan.secagg.encoding')])) as EncodingParams;
  if (typeof v.rotationSeed !== 'string' || !/^[0-9a-f]{2,128}$/.test(v.rotationSeed)) throw bad('plan.secagg.rotationSeed must be a hex string');
  const countScale = num(v, 'countScale', 'plan.secagg', positiveInt, true);
  const evalScale = num(v, 'evalScale', 'plan.secagg', positiveInt, true);
  return {
    ids,
    roster,
    k: num(v, 'k', 'plan.secagg', positiveInt)!,
    t: num(v, 't', 'plan.secagg', positiveInt)!,
    encoding,
    rotationSeed: v.rotationSeed,
    ...(countScale !== undefined ? { countScale } : {}),
    ...(evalScale !== undefined ? { evalScale } : {}),
  };
}
