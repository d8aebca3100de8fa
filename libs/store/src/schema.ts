/**
 * The SQLite schema, versioned with `PRAGMA user_version`. Migrations only ever add; a database
 * written by a newer fedlora is refused rather than silently misread.
 */

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = 3;

/** Migration n takes the database from version n to n + 1. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE federation (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    id         TEXT NOT NULL,
    config     TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('created', 'running', 'finished')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE clients (
    name           TEXT PRIMARY KEY,
    public_key     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('enrolled', 'revoked')),
    enrolled_at    INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
  );
  CREATE TABLE rounds (
    round        INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('planned', 'training', 'aggregating', 'committed', 'aborted')),
    plan         TEXT NOT NULL,
    participants TEXT NOT NULL,
    reason       TEXT,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    committed_at INTEGER,
    PRIMARY KEY (round, attempt)
  );
  CREATE TABLE checkpoints (
    round      INTEGER PRIMARY KEY,
    attempt    INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (round, attempt) REFERENCES rounds (round, attempt)
  );
  CREATE TABLE ledger (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    line       TEXT NOT NULL,
    round      INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
  CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
  CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    event  TEXT NOT NULL,
    client TEXT,
    detail TEXT,
    at     INTEGER NOT NULL
  );
  CREATE INDEX audit_event ON audit (event);
  CREATE INDEX audit_client ON audit (client);
  CREATE TABLE nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX nonces_expiry ON nonces (expires_at);
  `,
  // 2: the server optimizer's state (FedAdam/FedYogi/FedAdagrad moments) committed with each checkpoint.
  `
  ALTER TABLE checkpoints ADD COLUMN server_state BLOB;
  ALTER TABLE checkpoints ADD COLUMN server_state_sha256 TEXT;
  `,
  // 3: X25519 keys advertised in secure-aggregation rounds, so a restart does not forget them (issue 16, finding 13).
  `
  CREATE TABLE secagg_keys (
    public_key TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
  );
  `,
];
