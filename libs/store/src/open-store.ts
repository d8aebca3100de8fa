/** Opening a SQLite store: data-directory checks, pragmas, integrity check, migrations. */
import Database from 'better-sqlite3';
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { assertNonEmpty } from './round-rules.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';
import { SqliteFederationStore, type SqliteStoreOptions } from './sqlite-store.js';
import { StoreError, toStoreError } from './store-error.js';
import type { StoreOptions } from './types.js';

/**
 * Opens (creating if needed) the store at `path`, a file inside an existing, writable data
 * directory. Applies pending migrations and aborts nothing by itself: the coordinator calls
 * `abortIncompleteRounds` once it has decided to resume.
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteFederationStore {
  assertNonEmpty('path', path);
  const file = resolve(path);
  const dir = dirname(file);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new StoreError('missing-dir', `${file}: the data directory ${dir} does not exist; create it (mkdir -p) or point dataDir elsewhere`);
  }
  if (!st.isDirectory()) throw new StoreError('missing-dir', `${file}: ${dir} is not a directory; point dataDir at a directory`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new StoreError('read-only', `${file}: the data directory ${dir} is not writable by this user; fix its permissions or mount it read-write`);
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
    return initialise(file, db, options);
  } catch (err) {
    db?.close();
    throw toStoreError(err, file);
  }
}

/** An in-memory store (SQLite `:memory:`, same semantics as the file store) for tests and simulations. */
export function openMemoryStore(options: StoreOptions = {}): SqliteFederationStore {
  return initialise(':memory:', new Database(':memory:'), { ...options, integrityCheck: false });
}

function initialise(file: string, db: Database.Database, options: SqliteStoreOptions): SqliteFederationStore {
  // Must precede the first table and the switch to WAL: lets pruneCheckpoints give space back.
  if (Number(db.pragma('user_version', { simple: true })) === 0) db.pragma('auto_vacuum = INCREMENTAL');
  if (file !== ':memory:') {
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new StoreError('io', `${file}: could not switch to WAL journaling (got ${String(mode)})`);
  }
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  if (options.integrityCheck ?? true) {
    const result = db.pragma('quick_check', { simple: true });
    if (result !== 'ok') {
      throw new StoreError('corrupt', `${file}: integrity check failed (${String(result)}); restore the database from a backup`);
    }
  }
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version > SCHEMA_VERSION) {
    throw new StoreError('invalid-state', `${file}: schema version ${version} is newer than this fedlora understands (${SCHEMA_VERSION}); upgrade fedlora`);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
  if (options.maxBytes !== undefined) {
    if (!Number.isFinite(options.maxBytes) || options.maxBytes <= 0) {
      throw new RangeError(`maxBytes: expected a positive number of bytes, received ${options.maxBytes}`);
    }
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxBytes / pageSize))}`);
  }
  return new SqliteFederationStore(file, db, options);
}
