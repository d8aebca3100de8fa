// The coordinator's persistence: one interface, a SQLite implementation and an in-memory one.
/** Records and the FederationStore interface every implementation satisfies. */
export type {
  FederationStore,
  StoreOptions,
  FederationRecord,
  FederationState,
  ClientRecord,
  ClientStatus,
  RoundRecord,
  RoundState,
  RoundStateExtra,
  RoundCommit,
  CommittedRound,
  LedgerEntry,
  AuditEvent,
  AuditRecord,
  CheckpointInfo,
  StoreSummary,
} from './types.js';
/** The SQLite store class and its options (WAL, synchronous=FULL, size limit). */
export { SqliteFederationStore, type SqliteStoreOptions } from './sqlite-store.js';
/** Opens a file-backed store in an existing, writable data directory. */
export { openSqliteStore } from './open-store.js';
/** Opens an in-memory store with the same semantics, for tests and simulations. */
export { openMemoryStore } from './open-store.js';
/** One coordinator per data directory: an O_EXCL lock file with stale-pid takeover. */
export { acquireDataDirLock, type DataDirLock, type LockOptions } from './data-dir-lock.js';
/** Typed store errors (missing-dir, read-only, disk-full, corrupt, busy, ...). */
export { StoreError, type StoreErrorCode } from './store-error.js';
/** Hex SHA-256 of checkpoint bytes, as the store verifies it. */
export { sha256Hex } from './round-rules.js';
