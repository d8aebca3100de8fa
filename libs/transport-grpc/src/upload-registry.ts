import type { TensorLayout, UpdateHeader } from '@fedlora/federation';
import { FederationError } from '@fedlora/federation';
import type { UploadProgress } from './serde.js';
import { UploadSession } from './upload-session.js';

/** Default bound on the bytes all uploads in progress may hold together (partial buffers). */
export const DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

/** Options of an UploadRegistry. */
export interface UploadRegistryOptions {
  /** Bound on the bytes held by all uploads in progress; a new upload beyond it is RESOURCE_EXHAUSTED. */
  maxBytes?: number;
  /** Whether round `round` is open under plan nonce `nonce`; uploads of any other round attempt expire. */
  isLive: (round: number, nonce: string) => boolean;
  /** Monotonic milliseconds (idle ordering for eviction); injectable for tests. */
  now?: () => number;
}

/** The right to append to one upload: only the newest stream of an upload holds it. */
export interface UploadLease {
  readonly key: string;
  readonly id: number;
}

/**
 * Called when the registry takes an upload away from the stream holding it (a newer stream of the
 * same client and round, the round attempt closed, shutdown): the stream should end with `reason`.
 */
export type UploadAbort = (reason: FederationError) => void;

interface Entry {
  key: string;
  /** The resumable upload's id; '' for a one-shot upload. */
  uploadId: string;
  round: number;
  nonce: string;
  /** The header fields the update is made of: a resumed stream must repeat them exactly. */
  fingerprint: string;
  session: UploadSession | undefined;
  completed: boolean;
  /** Lease id of the stream appending now; 0 when no stream is attached. */
  owner: number;
  /** Ends the owning stream when the upload is taken from it. */
  abort: UploadAbort | undefined;
  lastActive: number;
}

function fingerprintOf(h: UpdateHeader): string {
  return JSON.stringify([h.clientId, h.round, h.nonce, h.numExamples, h.trainLoss, h.tensors, Object.entries(h.metrics).sort()]);
}

/**
 * Uploads in progress on the coordinator, keyed by (client, round, plan nonce): one upload per
 * client and round attempt, one-shot or resumable (#16 finding 4). A newer stream of the same
 * client and round takes the place of an older one, which is ended (`UploadAbort`), so one
 * institution can hold at most one update's worth of memory however many streams it opens. A
 * resumable upload keeps its verified prefix between streams; every upload expires when its
 * round attempt closes (completed, aborted, superseded by a rerun with a fresh nonce), and the
 * stream still holding it is ended. All buffers together stay under `maxBytes`: to admit a new
 * upload, the longest-idle detached partial uploads are evicted first (their clients restart from
 * 0), and if that is not enough the upload is refused as RESOURCE_EXHAUSTED for the client to
 * retry later. The caller checks that the client belongs to the round's cohort before asking.
 */
export class UploadRegistry {
  private readonly entries = new Map<string, Entry>();
  private held = 0;
  private nextLease = 1;
  private readonly maxBytes: number;
  private readonly now: () => number;

  constructor(private readonly opts: UploadRegistryOptions) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    if (!(this.maxBytes > 0)) throw new RangeError(`maxUploadBytes must be > 0, received ${this.maxBytes}`);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Bytes held by all uploads in progress. */
  get heldBytes(): number {
    return this.held;
  }

  /** Number of uploads known (in progress or completed, not yet expired). */
  get size(): number {
    return this.entries.size;
  }

  private static key(clientId: string, round: number, nonce: string): string {
    return JSON.stringify([clientId, round, nonce]);
  }

  /**
   * Starts or resumes the resumable upload `uploadId` of this header's client, round and nonce
   * (the caller has authenticated the client and checked the header against the open plan).
   * A completed upload answers `completed` (its response may have been lost); another upload id
   * for the same round replaces an unfinished one.
   */
  attach(
    header: UpdateHeader,
    uploadId: string,
    layout: readonly TensorLayout[],
    onAbort?: UploadAbort,
  ): { completed: true } | { completed: false; session: UploadSession; lease: UploadLease; resumed: boolean; resumedAt: number } {
    this.sweep();
    const key = UploadRegistry.key(header.clientId, header.round, header.nonce);
    const fingerprint = fingerprintOf(header);
    const e = this.entries.get(key);
    if (e && e.uploadId === uploadId) {
      if (e.completed) return { completed: true };
      if (e.fingerprint !== fingerprint) {
        throw new FederationError('invalid-argument', `upload ${uploadId} is resumed with a different header (example count, loss, metrics or layout changed): start a new upload with a new id`);
      }
      this.endOwner(e, new FederationError('failed-precondition', `upload ${uploadId} was resumed by a newer stream; this stream is stale`));
      e.owner = this.nextLease++;
      e.abort = onAbort;
      e.lastActive = this.now();
      return { completed: false, session: e.session!, lease: { key, id: e.owner }, resumed: true, resumedAt: e.session!.receivedBytes };
    }
    return { completed: false, resumed: false, resumedAt: 0, ...this.admit(header, uploadId, layout, fingerprint, onAbort) };
  }

  /**
   * A one-shot (non-resumable) upload of this header's client, round and nonce: its buffers count
   * against the bound until `release()`, or until `complete(lease)` hands the update over. It
   * replaces an unfinished upload of the same client and round (that stream is ended).
   */
  oneShot(header: UpdateHeader, layout: readonly TensorLayout[], onAbort?: UploadAbort): { session: UploadSession; lease: UploadLease; release(): void } {
    this.sweep();
    const { session, lease } = this.admit(header, '', layout, fingerprintOf(header), onAbort);
    return {
      session,
      lease,
      release: () => {
        const e = this.entries.get(lease.key);
        if (e && e.owner === lease.id && !e.completed) this.drop(lease.key);
      },
    };
  }

  /** A new upload for this client and round, in place of an unfinished one (whose stream is ended). */
  private admit(header: UpdateHeader, uploadId: string, layout: readonly TensorLayout[], fingerprint: string, onAbort: UploadAbort | undefined): { session: UploadSession; lease: UploadLease } {
    const key = UploadRegistry.key(header.clientId, header.round, header.nonce);
    const e = this.entries.get(key);
    if (e?.completed) {
      throw new FederationError('already-exists', `client ${header.clientId} already delivered an update for round ${header.round}${e.uploadId ? ` (upload ${e.uploadId})` : ''}`);
    }
    if (e) this.drop(key, new FederationError('failed-precondition', `a newer upload stream of client ${header.clientId} for round ${header.round} replaced this one (one upload per client and round)`));
    const session = new UploadSession(layout, uploadId !== '');
    this.reserve(session.byteSize);
    const entry: Entry = { key, uploadId, round: header.round, nonce: header.nonce, fingerprint, session, completed: false, owner: this.nextLease++, abort: onAbort, lastActive: this.now() };
    this.entries.set(key, entry);
    return { session, lease: { key, id: entry.owner } };
  }

  /** True when resumable upload `uploadId` of this header's client and round attempt was delivered whole. */
  delivered(header: UpdateHeader, uploadId: string): boolean {
    const e = this.entries.get(UploadRegistry.key(header.clientId, header.round, header.nonce));
    return !!e && e.completed && e.uploadId === uploadId;
  }

  /** Throws unless `lease` is still the upload's newest stream (an older stream must not append). */
  checkLease(lease: UploadLease): void {
    const e = this.entries.get(lease.key);
    if (!e || e.completed || !e.session) throw new FederationError('failed-precondition', 'this upload expired or was discarded while the stream was open: ask UploadStatus and start again');
    if (e.owner !== lease.id) throw new FederationError('failed-precondition', `upload ${e.uploadId} was resumed by a newer stream; this stream is stale`);
    e.lastActive = this.now();
  }

  /** The stream holding `lease` ended (whatever the outcome): the upload stays resumable. */
  detach(lease: UploadLease): void {
    const e = this.entries.get(lease.key);
    if (e && e.owner === lease.id) {
      e.owner = 0;
      e.abort = undefined;
      e.lastActive = this.now();
    }
  }

  /** The update was handed to the round: free its buffers, remember it as completed until the round closes. */
  complete(lease: UploadLease): void {
    const e = this.entries.get(lease.key);
    if (!e || !e.session) return;
    this.held -= e.session.byteSize;
    e.session = undefined;
    e.completed = true;
    e.owner = 0;
    e.abort = undefined;
  }

  /** Forgets an upload (failed whole-tensor check, update refused by the round). */
  discard(lease: UploadLease): void {
    this.drop(lease.key);
  }

  /** Where upload `uploadId` of this client's round attempt stands. */
  status(clientId: string, round: number, nonce: string, uploadId: string): UploadProgress {
    this.sweep();
    const e = this.entries.get(UploadRegistry.key(clientId, round, nonce));
    if (!e || e.uploadId !== uploadId) return { state: 'not-found' };
    if (e.completed) return { state: 'completed' };
    return { state: 'in-progress', tensors: e.session!.progress() };
  }

  /** Drops uploads whose round attempt is no longer open; streams still sending them are ended. */
  sweep(): void {
    for (const e of [...this.entries.values()]) {
      if (!this.opts.isLive(e.round, e.nonce)) this.drop(e.key, new FederationError('failed-precondition', `round ${e.round} closed (or was rerun) while this upload was open: its buffers were freed`));
    }
  }

  /** Drops everything (server shutdown); streams still sending are ended. */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.drop(key, new FederationError('unavailable', 'the coordinator is shutting down'));
  }

  /** Forgets an upload and frees its buffers; with `reason`, the stream holding it is ended. */
  private drop(key: string, reason?: FederationError): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.session) this.held -= e.session.byteSize;
    this.entries.delete(key);
    if (reason) this.endOwner(e, reason);
  }

  private endOwner(e: Entry, reason: FederationError): void {
    const abort = e.abort;
    e.abort = undefined;
    if (e.owner !== 0 && abort) {
      try {
        abort(reason);
      } catch {
        // Ending a stream that already ended is nothing to recover from.
      }
    }
  }

  private reserve(bytes: number): void {
    if (bytes > this.maxBytes) {
      throw new FederationError('resource-exhausted', `an update of ${bytes} bytes exceeds the coordinator's upload memory bound (${this.maxBytes} bytes): the operator can raise it (uploads.maxBufferedMB in the coordinator config)`);
    }
    if (this.held + bytes > this.maxBytes) {
      const idle = [...this.entries.values()].filter((e) => e.session && e.owner === 0).sort((a, b) => a.lastActive - b.lastActive);
      for (const e of idle) {
        if (this.held + bytes <= this.maxBytes) break;
        this.drop(e.key);
      }
    }
    if (this.held + bytes > this.maxBytes) {
      throw new FederationError('resource-exhausted', `uploads in progress hold ${this.held} of ${this.maxBytes} bytes; an update of ${bytes} bytes does not fit now: retry later`);
    }
    this.held += bytes;
  }
}
