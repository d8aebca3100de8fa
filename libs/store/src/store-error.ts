/** Typed errors of the store: each says what is wrong and what the operator can do about it. */

/** Why a store operation failed; callers branch on this, never on message text. */
export type StoreErrorCode =
  | 'missing-dir' // the data directory does not exist
  | 'read-only' // the data directory or database file cannot be written
  | 'disk-full' // SQLITE_FULL or ENOSPC
  | 'corrupt' // not a database, or a checkpoint whose bytes do not match its hash
  | 'busy' // another process holds the database lock
  | 'not-found' // a round, client or checkpoint that does not exist
  | 'invalid-state' // an operation that the round's state does not allow
  | 'closed' // the store was closed
  | 'io'; // any other storage failure

/** An error raised by a FederationStore. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Translates a SQLite or filesystem error into a StoreError with an actionable message.
 * `where` names the file involved. Errors that are already StoreErrors pass through.
 */
export function toStoreError(err: unknown, where: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') {
    return new StoreError(
      'disk-full',
      `${where}: the disk (or the configured database size limit) is full (${code}); the last transaction was rolled back and nothing was half-written. Free space or raise the limit, then restart.`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return new StoreError(
      'read-only',
      `${where}: cannot write (${code}: ${detail}); make the data directory and its files writable by this user.`,
      { cause: err },
    );
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new StoreError(
      'corrupt',
      `${where}: the database file is corrupt or not a SQLite database (${code}); restore it from a backup or move it away to start a new federation.`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError(
      'busy',
      `${where}: the database is locked by another process (${code}); is a second coordinator running on the same data directory?`,
      { cause: err },
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'ENOENT') {
    return new StoreError(
      'missing-dir',
      `${where}: cannot open the database (${code}: ${detail}); check that the data directory exists and is writable.`,
      { cause: err },
    );
  }
  if (err instanceof Error) return new StoreError('io', `${where}: storage error (${code || err.name}): ${detail}`, { cause: err });
  return new StoreError('io', `${where}: storage error: ${detail}`, { cause: err });
}
