import { existsSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { composeRdp, validateEvent } from './accountant.js';
import { rdpToEpsilon, type Conversion } from './conversion.js';
import { GENESIS_HASH, LEDGER_VERSION, lineHash, signEntry, toHex, type LedgerEntry, type LedgerHead, type LedgerRecordInput } from './ledger-format.js';
import { verifyLedgerText } from './ledger-verify.js';
import { unitLabel, validateUnit } from './privacy-unit.js';
import { resolveOrders } from './orders.js';
import { roundEvents } from './round-events.js';

/** Who writes a ledger: a name and a 64-byte tweetnacl Ed25519 secret key. */
export interface LedgerSigner {
  writer: string;
  secretKey: Uint8Array;
  /** coordinator (the federation's ledger) or client (an institution's own ledger); default client. */
  role?: 'coordinator' | 'client';
}

/** Accounting settings fixed for the life of a ledger. */
export interface LedgerSettings {
  delta: number;
  orders?: string | number[];
  conversion?: Conversion;
}

/**
 * Recovers from a crash during an append: if the ONLY problem of the ledger at path is a torn
 * last line (a write that never completed, so its append never resolved and nothing was
 * released on its strength), the partial bytes are moved to `<path>.torn-<n>` for the record and
 * the file is truncated to its last complete line. Any other problem is left alone (returns
 * repaired: false) for an auditor to look at.
 */
export async function repairTornTail(path: string): Promise<{ repaired: boolean; removedBytes: number; savedTo?: string; problems: string[] }> {
  const text = await readFile(path, 'utf8');
  const v = verifyLedgerText(text);
  const torn = v.problems.length === 1 && /truncated last line/.test(v.problems[0]!.message);
  if (!torn) return { repaired: false, removedBytes: 0, problems: v.problems.map((p) => p.message) };
  const keep = text.slice(0, text.lastIndexOf('\n') + 1);
  const tail = text.slice(keep.length);
  let n = 0;
  while (existsSync(`${path}.torn-${n}`)) n++;
  const savedTo = `${path}.torn-${n}`;
  await writeFile(savedTo, tail);
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(Buffer.byteLength(keep, 'utf8'));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { repaired: true, removedBytes: Buffer.byteLength(tail, 'utf8'), savedTo, problems: [] };
}

/** Thrown when an existing ledger fails verification on open (names the first problem). */
export class LedgerCorruptError extends Error {
  override name = 'LedgerCorruptError';
}

/**
 * An append-only, hash-chained, Ed25519-signed privacy ledger (JSONL). Opening verifies the
 * whole file and refuses a corrupt one (including a torn last line from a crash: it is reported,
 * never silently dropped or continued). Each append writes one complete line with a single
 * write() and fsyncs before resolving, so a crash leaves either the whole entry or a torn tail
 * that the next open and every audit detect. Appends are serialised within the process.
 * A ledger accounts one privacy unit (privacy-unit.ts: institution, document, a field, or sequence): keep one ledger per unit.
 */
export class Ledger {
  private queue: Promise<unknown> = Promise.resolve();
  /** The unit's label (`unitLabel`): the unit, or the field's name for `field`. */
  private unit: string | undefined;
  /** The last `federationHead` this ledger recorded. */
  private anchored: LedgerHead | undefined;

  private constructor(
    readonly path: string,
    private readonly signer: Required<LedgerSigner>,
    private readonly settings: { delta: number; orders: number[]; conversion: Conversion },
    private seq: number,
    private prevHash: string,
    private rdp: number[],
    private readonly publicKey: string,
  ) {}

  /** Opens (creating if absent) the ledger at path; an existing ledger must verify and match the signer and settings. */
  static async open(path: string, signer: LedgerSigner, settings: LedgerSettings): Promise<Ledger> {
    if (!(signer.secretKey instanceof Uint8Array) || signer.secretKey.length !== 64) {
      throw new TypeError(`signer.secretKey must be a 64-byte Ed25519 secret key, received ${signer.secretKey?.length} bytes`);
    }
    if (typeof signer.writer !== 'string' || signer.writer === '') throw new TypeError('signer.writer must be a non-empty string');
    if (!(settings.delta > 0 && settings.delta < 1)) throw new RangeError(`delta must be in (0, 1), received ${settings.delta}`);
    const publicKey = toHex(signer.secretKey.subarray(32));
    const s = { delta: settings.delta, orders: resolveOrders(settings.orders), conversion: settings.conversion ?? ('improved' as const) };
    const full = { writer: signer.writer, secretKey: signer.secretKey, role: signer.role ?? ('client' as const) };
    await mkdir(dirname(path), { recursive: true });
    if (!existsSync(path)) return new Ledger(path, full, s, 0, GENESIS_HASH, new Array<number>(s.orders.length).fill(0), publicKey);
    const v = verifyLedgerText(await readFile(path, 'utf8'));
    if (!v.valid) throw new LedgerCorruptError(`ledger ${path} does not verify: ${v.problems[0]!.message}`);
    const head = v.parsed[0];
    if (head) {
      if (head.publicKey !== publicKey) throw new LedgerCorruptError(`ledger ${path} belongs to writer ${head.writer} with another key`);
      if (head.delta !== s.delta || head.conversion !== s.conversion || JSON.stringify(head.orders) !== JSON.stringify(s.orders)) {
        throw new LedgerCorruptError(`ledger ${path} was written with other accounting settings (delta ${head.delta}, conversion ${head.conversion})`);
      }
    }
    const rdp = v.cumulativeRdp.length ? v.cumulativeRdp : new Array<number>(s.orders.length).fill(0);
    const ledger = new Ledger(path, full, s, v.entries, v.lastHash, rdp, publicKey);
    ledger.unit = head ? unitLabel(head.unit, head.unitField) : undefined;
    ledger.anchored = [...v.parsed].reverse().find((e) => e.federationHead)?.federationHead;
    return ledger;
  }

  /** Number of entries written. */
  get length(): number {
    return this.seq;
  }

  /** The head to anchor elsewhere (round plans, institutions' ledgers): entries written and the hash of the last line. */
  head(): LedgerHead {
    return { entries: this.seq, hash: this.prevHash };
  }

  /** The last entry that anchored another ledger's head (`federationHead`), if any: a later head must extend it. */
  lastAnchoredHead(): LedgerHead | undefined {
    return this.anchored;
  }

  /** Cumulative epsilon (at the ledger's delta) and RDP curve. */
  spent(): { epsilon: number; rdp: number[] } {
    return { epsilon: rdpToEpsilon(this.settings.orders, this.rdp, this.settings.delta, this.settings.conversion).epsilon, rdp: [...this.rdp] };
  }

  /** Appends one signed entry (events default to those implied by params); resolves once it is on disk. */
  append(input: LedgerRecordInput): Promise<LedgerEntry> {
    const run = this.queue.then(() => this.write(input));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(input: LedgerRecordInput): Promise<LedgerEntry> {
    validateUnit(input.unit, input.unitField);
    const label = unitLabel(input.unit, input.unitField);
    this.unit ??= label;
    if (label !== this.unit) throw new RangeError(`this ledger accounts the ${this.unit} unit, received an entry for ${label}: keep one ledger per privacy unit`);
    const events = (input.events ?? (input.params ? roundEvents(input.params) : [])).map((e, j) => validateEvent(e, `events[${j}]`));
    if (input.kind !== 'round' && events.length) throw new RangeError(`a ${input.kind} entry must release nothing, received ${events.length} event(s)`);
    const add = composeRdp(events, this.settings.orders);
    const cumulative = this.rdp.map((r, i) => r + add[i]!);
    const epsilon = rdpToEpsilon(this.settings.orders, cumulative, this.settings.delta, this.settings.conversion).epsilon;
    const unsigned: Omit<LedgerEntry, 'signature'> = {
      ...input,
      version: LEDGER_VERSION,
      seq: this.seq,
      writer: this.signer.writer,
      role: this.signer.role,
      publicKey: this.publicKey,
      prevHash: this.prevHash,
      events,
      delta: this.settings.delta,
      orders: this.settings.orders,
      conversion: this.settings.conversion,
      cumulativeRdp: cumulative,
      epsilon,
    };
    const entry: LedgerEntry = { ...unsigned, signature: signEntry(unsigned, this.signer.secretKey) };
    const line = JSON.stringify(entry);
    const fh = await open(this.path, 'a');
    try {
      await fh.write(`${line}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.seq++;
    this.prevHash = lineHash(line);
    this.rdp = cumulative;
    if (input.federationHead) this.anchored = { ...input.federationHead };
    return entry;
  }
}
