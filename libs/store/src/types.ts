/** The coordinator's persistent state, as records and one interface (FederationStore). */

/** Lifecycle of the whole federation run. */
export type FederationState = 'created' | 'running' | 'finished';

/** The federation's configuration and state (one row). */
export interface FederationRecord {
  id: string;
  /** The validated coordinator configuration, as plain JSON. */
  config: unknown;
  state: FederationState;
  createdAt: number;
  updatedAt: number;
}

/** Whether an enrolled identity may still take part. */
export type ClientStatus = 'enrolled' | 'revoked';

/** An institution's enrolment: its name and Ed25519 public key. */
export interface ClientRecord {
  name: string;
  /** Ed25519 public key, base64 (32 bytes). */
  publicKey: string;
  status: ClientStatus;
  enrolledAt: number;
  revokedAt?: number;
  revokedReason?: string;
}

/**
 * Round lifecycle: planned -> training -> aggregating -> committed, or aborted from any
 * non-terminal state. A round number may be attempted again after an abort (fresh keys).
 */
export type RoundState = 'planned' | 'training' | 'aggregating' | 'committed' | 'aborted';

/** One attempt at one round. */
export interface RoundRecord {
  round: number;
  /** 1 for the first attempt, incremented each time an aborted round is rerun. */
  attempt: number;
  state: RoundState;
  /** The round plan (cohort, hyper-parameters, SecAgg parameters), as plain JSON. */
  plan: unknown;
  /** Client names that took part (the survivors once committed). */
  participants: string[];
  reason?: string;
  startedAt: number;
  updatedAt: number;
  committedAt?: number;
}

/** What `latestCommitted()` reports: the last round whose checkpoint is durable. */
export interface CommittedRound {
  round: number;
  attempt: number;
  /**
   * Hex SHA-256 of the checkpoint's safetensors bytes (logged as `checkpointSha256`). Not the
   * round plan's `adapterSha256`, which hashes the tensors (sha256Named); the checkpoint carries
   * that one in its safetensors metadata.
   */
  sha256: string;
  bytes: number;
  committedAt: number;
}

/** Everything written atomically when a round is committed. */
export interface RoundCommit {
  /** The new global adapter, in safetensors bytes. */
  checkpoint: Uint8Array;
  /** Hex SHA-256 of the `checkpoint` bytes (`checkpointSha256`, not the plan's `adapterSha256`); verified before writing. */
  sha256: string;
  /** An opaque ledger line (JSON) produced by the privacy library, appended in the same transaction. */
  ledgerLine?: string;
  /** Final participant list (survivors), if it differs from the planned one. */
  participants?: string[];
  /**
   * The server optimizer's state after this round (opaque bytes, e.g. FedAdam's moments), kept
   * with the checkpoint so a resumed run continues with the same optimizer, never fresh moments.
   */
  serverState?: Uint8Array;
}

/** A stored checkpoint without its bytes. */
export interface CheckpointInfo {
  round: number;
  attempt: number;
  /**
   * Hex SHA-256 of the checkpoint's safetensors bytes (logged as `checkpointSha256`). Not the
   * round plan's `adapterSha256`, which hashes the tensors (sha256Named); the checkpoint carries
   * that one in its safetensors metadata.
   */
  sha256: string;
  bytes: number;
  createdAt: number;
}

/** What `summary()` reports. */
export interface StoreSummary {
  federation?: { id: string; state: FederationState };
  clients: { enrolled: number; revoked: number };
  rounds: Record<RoundState, number>;
  latestCommitted?: number;
  checkpoints: { count: number; bytes: number };
  ledgerEntries: number;
  auditEvents: number;
}

/** One ledger line with its position in the append-only log. */
export interface LedgerEntry {
  seq: number;
  line: string;
  round?: number;
  createdAt: number;
}

/** One security- or operations-relevant event (refused request, revocation, abort, ...). */
export interface AuditEvent {
  event: string;
  client?: string;
  detail?: unknown;
}

/** An audit event as stored. */
export interface AuditRecord extends AuditEvent {
  id: number;
  at: number;
}

/** Extra fields recorded with a state change. */
export interface RoundStateExtra {
  reason?: string;
  participants?: string[];
}

/**
 * The coordinator's persistence. Every method is synchronous and each mutating method is one
 * transaction: after a crash the store holds either all of its effects or none.
 */
export interface FederationStore {
  /** The federation row, or undefined before the first `saveFederation`. */
  getFederation(): FederationRecord | undefined;
  /** Creates or replaces the federation's id, config and state. */
  saveFederation(fed: { id: string; config: unknown; state: FederationState }): FederationRecord;

  /** Enrols a client or replaces its key; a revoked client stays revoked unless `reinstate` is set. */
  upsertClient(client: { name: string; publicKey: string; reinstate?: boolean }): ClientRecord;
  /** Marks a client revoked (effective immediately for new requests); throws not-found for an unknown name. */
  revokeClient(name: string, reason?: string): ClientRecord;
  /** One client, or undefined. */
  getClient(name: string): ClientRecord | undefined;
  /** All clients, by name. */
  listClients(): ClientRecord[];

  /** Starts a new attempt of `round` in state `planned`; refuses if the round is committed or has an open attempt. */
  beginRound(round: number, plan: unknown, participants?: string[]): RoundRecord;
  /** Moves the open attempt of `round` to `state` (forward only; `committed` only via commitRound). */
  setRoundState(round: number, state: Exclude<RoundState, 'committed' | 'planned'>, extra?: RoundStateExtra): RoundRecord;
  /** In one transaction: stores the checkpoint, marks the round committed, appends the ledger line. */
  commitRound(round: number, commit: RoundCommit): CommittedRound;
  /** The latest attempt of `round`, or undefined. */
  getRound(round: number): RoundRecord | undefined;
  /** Every attempt of every round, oldest first. */
  listRounds(): RoundRecord[];
  /** The highest committed round, or undefined when none is. */
  latestCommitted(): CommittedRound | undefined;
  /** The checkpoint bytes of a committed round, verified against the stored SHA-256. */
  loadCheckpoint(round: number): {
    bytes: Uint8Array;
    /** Of the bytes (`checkpointSha256`). */ sha256: string;
    /** The server optimizer's state committed with the checkpoint (checksum verified), if any. */
    serverState?: Uint8Array;
  };
  /** Metadata of every stored checkpoint, oldest first (no bytes). */
  listCheckpoints(): CheckpointInfo[];
  /**
   * Deletes checkpoint bytes of all but the newest `keepLast` committed rounds (and any round in
   * `keep`); rounds and ledger stay. Returns the rounds pruned. The latest checkpoint is never pruned.
   */
  pruneCheckpoints(keepLast: number, keep?: number[]): number[];
  /** Counts for status reports. */
  summary(): StoreSummary;
  /** Marks every open (planned/training/aggregating) attempt aborted; returns the rounds affected. */
  abortIncompleteRounds(reason: string): RoundRecord[];

  /** Appends a ledger line outside a round commit; returns its sequence number. */
  appendLedger(line: string, round?: number): number;
  /** Ledger lines with seq > `afterSeq` (default: all), in order. */
  listLedger(afterSeq?: number): LedgerEntry[];

  /** Appends an audit event stamped with the store's clock. */
  appendAudit(event: AuditEvent): AuditRecord;
  /** The most recent audit events (newest last), at most `limit` (default 1000). */
  listAudit(options?: { limit?: number; event?: string; client?: string }): AuditRecord[];

  /**
   * Remembers a request nonce until `expiresAt` (ms since epoch). Returns false when the nonce was
   * already recorded and has not expired (a replay). Expired nonces are pruned as a side effect.
   */
  recordNonce(nonce: string, expiresAt: number): boolean;

  /** Whether this X25519 public key (hex) was advertised in an earlier secure-aggregation round. */
  isSecAggKeyUsed(publicKeyHex: string): boolean;
  /** Records an advertised X25519 public key (hex) for good: a key is never accepted in two rounds, across restarts too. */
  recordSecAggKey(publicKeyHex: string): void;

  /** Releases the database; further calls throw StoreError('closed'). */
  close(): void;
}

/** Options shared by store implementations. */
export interface StoreOptions {
  /** Clock in ms since the epoch (default Date.now); a parameter so tests control time. */
  now?: () => number;
}
