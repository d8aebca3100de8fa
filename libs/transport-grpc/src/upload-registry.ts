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

interface Entry {
  key: string;
  uploadId: string;
  round: number;
  nonce: string;
  /** The header fields the update is made of: a resumed stream must repeat them exactly. */
  fingerprint: string;
  session: UploadSession | undefined;
  completed: boolean;
  /** Lease id of the stream appending now; 0 when no stream is attached. */
  owner: number;
  lastActive: number;
}

function fingerprintOf(h: UpdateHeader): string {
  return JSON.stringify([h.clientId, h.round, h.nonce, h.numExamples, h.trainLoss, h.tensors, Object.entries(h.metrics).sort()]);
}

/**
 * Uploads in progress on the coordinator, keyed by (client, round, plan nonce). A resumable
 * upload keeps its verified prefix between streams; it expires when its round attempt closes
 * (completed, aborted, superseded by a rerun with a fresh nonce). All buffers together stay
 * under `maxBytes`: to admit a new upload, the longest-idle detached partial uploads are evicted
 * first (their clients restart from 0), and if that is not enough the upload is refused as
 * RESOURCE_EXHAUSTED for the client to retry later. One-shot uploads count against the same bound
 * while they stream.
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

  /** Number of resumable uploads known (in progress or completed, not yet expired). */
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
  attach(header: UpdateHeader, uploadId: string, layout: readonly TensorLayout[]): { completed: true } | { completed: false; session: UploadSession; lease: UploadLease; resumed: boolean; resumedAt: number } {
    this.sweep();
    const key = UploadRegistry.key(header.clientId, header.round, header.nonce);
    const fingerprint = fingerprintOf(header);
    const e = this.entries.get(key);
    if (e && e.uploadId === uploadId) {
      if (e.completed) return { completed: true };
      if (e.fingerprint !== fingerprint) {
        throw new FederationError('invalid-argument', `upload ${uploadId} is resumed with a different header (example count, loss, metrics or layout changed): start a new upload with a new id`);
      }
      e.owner = this.nextLease++;
      e.lastActive = this.now();
      return { completed: false, session: e.session!, lease: { key, id: e.owner }, resumed: true, resumedAt: e.session!.receivedBytes };
    }
    if (e?.completed) {
      throw new FederationError('already-exists', `client ${header.clientId} already delivered an update for round ${header.round} (upload ${e.uploadId})`);
    }
    if (e) this.drop(key);
    const session = new UploadSession(layout, true);
    this.reserve(session.byteSize);
    const entry: Entry = { key, uploadId, round: header.round, nonce: header.nonce, fingerprint, session, completed: false, owner: this.nextLease++, lastActive: this.now() };
    this.entries.set(key, entry);
    return { completed: false, session, lease: { key, id: entry.owner }, resumed: false, resumedAt: 0 };
  }

  /** A one-shot (non-resumable) upload's buffers, counted against the bound until `release()`. */
  oneShot(layout: readonly TensorLayout[]): { session: UploadSession; release(): void } {
    this.sweep();
    const session = new UploadSession(layout, false);
    this.reserve(session.byteSize);
    let released = false;
    return {
      session,
      release: () => {
        if (released) return;
        released = true;
        this.held -= session.byteSize;
      },
    };
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

  /** Drops uploads whose round attempt is no longer open. */
  sweep(): void {
    for (const e of [...this.entries.values()]) if (!this.opts.isLive(e.round, e.nonce)) this.drop(e.key);
  }

  /** Drops everything (server shutdown). */
  clear(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.session) this.held -= e.session.byteSize;
    this.entries.delete(key);
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
