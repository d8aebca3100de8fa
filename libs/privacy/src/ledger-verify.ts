import { readFileSync } from 'node:fs';
import { composeRdp, validateEvent, type PrivacyEvent } from './accountant.js';
import { rdpToEpsilon } from './conversion.js';
import { canonicalJson, GENESIS_HASH, lineHash, verifyEntrySignature, type LedgerEntry } from './ledger-format.js';
import { describeMechanism } from './mechanism-description.js';
import { unitLabel, validateUnit } from './privacy-unit.js';
import { roundEvents } from './round-events.js';
import { checkAccountedSampling } from './cohort-sampling-accounting.js';
import { trustedKeyHex } from './trusted-keys.js';

/** One finding of the verifier, naming the entry (seq, or line number when the line cannot be parsed). */
export interface LedgerProblem {
  line: number;
  seq?: number;
  message: string;
}

/** Per-round view of a verified ledger (for reports and charts). */
export interface LedgerRoundSummary {
  seq: number;
  round: number;
  kind: LedgerEntry['kind'];
  subject?: string;
  survivors?: number;
  /** Institution-level rounds: the clip norm C of the round (it changes between rounds with adaptive clipping). */
  clipNorm?: number;
  epsilon: number;
  /** The recorded mechanism and its noise, described for people (rounds with parameters). */
  mechanism?: string;
  noise?: string;
  /** Why nothing was released (aborted and refused entries), as recorded. */
  note?: string;
}

/** Result of verifying one ledger. */
export interface LedgerVerification {
  valid: boolean;
  entries: number;
  writer?: string;
  role?: LedgerEntry['role'];
  publicKey?: string;
  unit?: LedgerEntry['unit'];
  /** With unit `field`: the field that defines a unit. */
  unitField?: string;
  /** The unit as printed beside an epsilon (`unitLabel`): "document", "patient_id", "institution". */
  unitLabel?: string;
  delta?: number;
  budget?: { epsilon: number; delta: number };
  /** Cumulative epsilon recomputed from the recorded parameters (not read from the file). */
  epsilon: number;
  rounds: LedgerRoundSummary[];
  problems: LedgerProblem[];
  /** The parsed entries that passed parsing (for callers that continue a ledger). */
  parsed: LedgerEntry[];
  /** Hash of the last complete line (GENESIS_HASH for an empty ledger). */
  lastHash: string;
  /** SHA-256 of each line, in order: lineHashes[n - 1] is the head hash after n entries (for anchor checks). */
  lineHashes: string[];
  /** Recomputed cumulative RDP after the last entry. */
  cumulativeRdp: number[];
}

/** Options of verifyLedger. */
export interface VerifyOptions {
  /** writer -> Ed25519 public key (hex or base64); when given, a ledger signed by another key is rejected. */
  trustedKeys?: Record<string, string>;
}

/** A trusted key as hex (trusted-keys.ts); a malformed one matches no ledger key. */
function normalizeKey(k: string | undefined): string | undefined {
  return k === undefined ? undefined : (trustedKeyHex(k) ?? `invalid:${k}`);
}

function isKnownUnit(unit: unknown, unitField: unknown): boolean {
  if (unit === 'record') return unitField === undefined;
  try {
    validateUnit(unit, unitField);
    return true;
  } catch {
    return false;
  }
}

function close(a: number, b: number): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b)) + 1e-12;
}

/**
 * Adaptive clipping (Andrew et al. 2021, Algorithm 1, geometric update): a round's clip must be
 * the one the previous adaptive round set, and the next clip must follow from the recorded noisy
 * fraction: C' = C exp(-eta_C (b~ - gamma)). Returns the problem (if any) and the next clip.
 */
function adaptiveClipProblem(entry: LedgerEntry, expectedClip: number | undefined): { message?: string; next?: number } | undefined {
  const p = entry.params;
  if (!p || p.mode === 'dp-sgd' || !p.adaptive) return undefined;
  const a = p.adaptive;
  if (expectedClip !== undefined && !close(p.clipNorm, expectedClip)) {
    return { message: `adaptive clipping: clipNorm ${p.clipNorm} is not the ${expectedClip} the previous round set`, next: a.nextClipNorm };
  }
  const next = p.clipNorm * Math.exp(-a.learningRate * (a.noisyUnclippedFraction - a.targetQuantile));
  if (!close(next, a.nextClipNorm)) {
    return { message: `adaptive clipping: nextClipNorm ${a.nextClipNorm} does not follow from clipNorm ${p.clipNorm} and the released fraction ${a.noisyUnclippedFraction} (expected ${next})`, next: a.nextClipNorm };
  }
  return { next: a.nextClipNorm };
}

/**
 * Verifies a ledger: every line parses, is complete (a torn last line is reported, never
 * accepted), carries the next seq and the hash of the previous line, is signed by the ledger's
 * single writer (and by the trusted key if given), its events follow from its parameters, its
 * cumulative RDP and epsilon match what the accountant recomputes from all entries so far, and
 * adaptive clip norms follow the recorded geometric updates from round to round.
 */
export function verifyLedgerText(text: string, opts: VerifyOptions = {}): LedgerVerification {
  const problems: LedgerProblem[] = [];
  const parsed: LedgerEntry[] = [];
  const rounds: LedgerRoundSummary[] = [];
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text.length === 0;
  if (lines[lines.length - 1] === '') lines.pop();
  let prevHash = GENESIS_HASH;
  let first: LedgerEntry | undefined;
  let cumulative: number[] = [];
  let epsilon = 0;
  let adaptiveClip: number | undefined;
  const lineHashes: string[] = [];

  lines.forEach((line, i) => {
    const lineNo = i + 1;
    const isLast = i === lines.length - 1;
    if (isLast && !complete) {
      problems.push({ line: lineNo, message: `line ${lineNo}: truncated last line (no newline): an interrupted write, entry not accepted` });
      return;
    }
    lineHashes.push(lineHash(line));
    let entry: LedgerEntry;
    try {
      entry = JSON.parse(line) as LedgerEntry;
      if (typeof entry !== 'object' || entry === null) throw new Error('not an object');
    } catch {
      problems.push({ line: lineNo, message: `line ${lineNo}: not a valid JSON entry (corrupted)` });
      prevHash = lineHash(line);
      return;
    }
    const seq = entry.seq;
    const name = `entry ${seq} (line ${lineNo})`;
    const report = (message: string): void => {
      problems.push({ line: lineNo, seq, message: `${name}: ${message}` });
    };
    if (seq !== i) report(`seq is ${seq}, expected ${i}: an entry is missing, inserted or out of order`);
    if (entry.prevHash !== prevHash) report('prevHash does not match the previous line: the chain is broken (edited, deleted or reordered entry)');
    prevHash = lineHash(line);
    if (!verifyEntrySignature(entry)) report('signature does not verify: the entry was altered or signed by another key');
    first ??= entry;
    if (entry.publicKey !== first.publicKey || entry.writer !== first.writer) report(`writer/key differs from the ledger's first entry (${first.writer})`);
    const trusted = normalizeKey(opts.trustedKeys?.[entry.writer]);
    if (opts.trustedKeys && trusted !== entry.publicKey) report(`writer ${entry.writer} is not signed with its trusted key`);
    if (canonicalJson(entry.orders) !== canonicalJson(first.orders) || entry.delta !== first.delta || entry.conversion !== first.conversion) {
      report('orders, delta or conversion changed within the ledger');
    }
    if (entry.unit !== first.unit || entry.unitField !== first.unitField) {
      report(`privacy unit ${unitLabel(entry.unit, entry.unitField)} differs from the ledger's (${unitLabel(first.unit, first.unitField)}): one ledger per privacy unit`);
    }
    if (!isKnownUnit(entry.unit, entry.unitField)) report(`privacy unit ${JSON.stringify(entry.unit)} is not one fedlora accounts (institution, document, field with unitField, sequence, or the legacy record)`);
    parsed.push(entry);

    // Recompute the accounting from the recorded parameters.
    let events: PrivacyEvent[] = [];
    try {
      events = (entry.events ?? []).map((e, j) => validateEvent(e, `events[${j}]`));
      if (entry.kind !== 'round' && events.length > 0) report(`a ${entry.kind} entry must release nothing, but records ${events.length} event(s)`);
      if (entry.params) {
        const expected = roundEvents(entry.params);
        if (canonicalJson(expected) !== canonicalJson(events)) report('mis-accounted: its events do not follow from its recorded parameters');
        const p = entry.params;
        if (p.mode !== 'dp-sgd' && p.sampling) {
          const wrong = checkAccountedSampling(p.mode, p.samplingRate, p.sampling);
          if (wrong) report(`mis-accounted: ${wrong}`);
        }
      }
      if (cumulative.length === 0) cumulative = new Array<number>(first.orders.length).fill(0);
      const add = composeRdp(events, first.orders);
      cumulative = cumulative.map((r, k) => r + add[k]!);
      epsilon = rdpToEpsilon(first.orders, cumulative, first.delta, first.conversion).epsilon;
    } catch (err) {
      report(`cannot be accounted: ${(err as Error).message}`);
    }
    const clipProblem = entry.kind === 'round' ? adaptiveClipProblem(entry, adaptiveClip) : undefined;
    if (clipProblem?.message) report(clipProblem.message);
    if (clipProblem?.next !== undefined) adaptiveClip = clipProblem.next;
    const recorded = entry.cumulativeRdp ?? [];
    if (recorded.length !== cumulative.length || recorded.some((r, k) => !close(r, cumulative[k]!))) {
      report('mis-accounted: recorded cumulative RDP differs from the recomputed one');
    }
    if (!close(entry.epsilon, epsilon)) report(`mis-accounted: records epsilon ${entry.epsilon}, recomputed ${epsilon}`);
    if (entry.budget && epsilon > entry.budget.epsilon * (1 + 1e-12)) report(`overspent: epsilon ${epsilon} exceeds the budget ${entry.budget.epsilon}`);
    const survivors = entry.params && 'survivors' in entry.params ? entry.params.survivors : undefined;
    const clipNorm = entry.params && entry.params.mode !== 'dp-sgd' ? entry.params.clipNorm : undefined;
    rounds.push({
      seq,
      round: entry.round,
      kind: entry.kind,
      epsilon,
      ...(entry.subject ? { subject: entry.subject } : {}),
      ...(survivors !== undefined ? { survivors } : {}),
      ...(clipNorm !== undefined ? { clipNorm } : {}),
      ...(entry.params ? describeMechanism(entry.params) : {}),
      ...(entry.note !== undefined ? { note: String(entry.note).slice(0, 300) } : {}),
    });
  });

  const last = parsed[parsed.length - 1];
  const budget = last?.budget ?? first?.budget;
  return {
    valid: problems.length === 0,
    entries: lines.length,
    ...(first
      ? { writer: first.writer, role: first.role, publicKey: first.publicKey, unit: first.unit, ...(first.unitField ? { unitField: first.unitField } : {}), unitLabel: unitLabel(first.unit, first.unitField), delta: first.delta }
      : {}),
    ...(budget ? { budget } : {}),
    epsilon,
    rounds,
    problems,
    parsed,
    lastHash: prevHash,
    lineHashes,
    cumulativeRdp: cumulative,
  };
}

/** verifyLedgerText on a file's contents. */
export function verifyLedgerFile(path: string, opts: VerifyOptions = {}): LedgerVerification {
  return verifyLedgerText(readFileSync(path, 'utf8'), opts);
}

/**
 * Verifies a ledger given as JSONL text (anything starting with "{" or empty) or as a file path.
 * See verifyLedgerText for what is checked.
 */
export function verifyLedger(textOrPath: string, opts: VerifyOptions = {}): LedgerVerification {
  const t = textOrPath.trimStart();
  return t === '' || t.startsWith('{') ? verifyLedgerText(textOrPath, opts) : verifyLedgerFile(textOrPath, opts);
}
