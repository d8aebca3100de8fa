/**
 * FederationStore on SQLite (better-sqlite3): WAL journal, synchronous=FULL, one transaction per
 * mutating call. With synchronous=FULL every committed transaction is fsynced to the WAL before
 * the call returns, so `kill -9` or a power cut loses at most the call that was in flight, and a
 * round's checkpoint, state and ledger line are committed together or not at all.
 */
import Database from 'better-sqlite3';
import {
  assertChecksum,
  assertLedgerLine,
  assertNonEmpty,
  assertPublicKey,
  assertRoundNumber,
  assertTransition,
  OPEN_ROUND_STATES,
  sha256Hex,
} from './round-rules.js';
import { StoreError, toStoreError } from './store-error.js';
import type {
  CheckpointInfo,
  StoreSummary,
  AuditEvent,
  AuditRecord,
  ClientRecord,
  CommittedRound,
  FederationRecord,
  FederationState,
  FederationStore,
  LedgerEntry,
  RoundCommit,
  RoundRecord,
  RoundState,
  RoundStateExtra,
  StoreOptions,
} from './types.js';

/** Options of the SQLite store. */
export interface SqliteStoreOptions extends StoreOptions {
  /** Upper bound on the database size in bytes (SQLite max_page_count); writes past it fail with StoreError('disk-full'). */
  maxBytes?: number;
  /** Run `PRAGMA quick_check` when opening (default true): a damaged file is refused at start-up, not mid-run. */
  integrityCheck?: boolean;
  /** How long to wait for a lock held by another connection, ms (default 5000). */
  busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;

const OPEN_STATES_SQL = OPEN_ROUND_STATES.map((s) => `'${s}'`).join(', ');

/** The SQLite-backed store. Create with `openSqliteStore(path)` or `openMemoryStore()` (open-store.ts). */
export class SqliteFederationStore implements FederationStore {
  private db: Database.Database | undefined;
  private readonly now: () => number;

  constructor(
    readonly path: string,
    db: Database.Database,
    options: StoreOptions = {},
  ) {
    this.db = db;
    this.now = options.now ?? Date.now;
  }

  getFederation(): FederationRecord | undefined {
    return this.guard(() => {
      const r = this.conn().prepare('SELECT * FROM federation WHERE singleton = 1').get() as Row | undefined;
      return r ? toFederation(r) : undefined;
    });
  }

  saveFederation(fed: { id: string; config: unknown; state: FederationState }): FederationRecord {
    assertNonEmpty('id', fed.id);
    if (!['created', 'running', 'finished'].includes(fed.state)) {
      throw new RangeError(`state: expected "created", "running" or "finished", received ${JSON.stringify(fed.state)}`);
    }
    const config = JSON.stringify(fed.config ?? null);
    return this.tx(() => {
      const t = this.now();
      this.conn()
        .prepare(
          `INSERT INTO federation (singleton, id, config, state, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?)
           ON CONFLICT (singleton) DO UPDATE SET id = excluded.id, config = excluded.config, state = excluded.state, updated_at = excluded.updated_at`,
        )
        .run(fed.id, config, fed.state, t, t);
      return this.getFederation()!;
    });
  }

  upsertClient(client: { name: string; publicKey: string; reinstate?: boolean }): ClientRecord {
    assertNonEmpty('name', client.name);
    assertPublicKey(client.publicKey);
    return this.tx(() => {
      const existing = this.getClient(client.name);
      const t = this.now();
      if (!existing) {
        this.conn()
          .prepare(`INSERT INTO clients (name, public_key, status, enrolled_at) VALUES (?, ?, 'enrolled', ?)`)
          .run(client.name, client.publicKey, t);
      } else if (client.reinstate) {
        this.conn()
          .prepare(`UPDATE clients SET public_key = ?, status = 'enrolled', enrolled_at = ?, revoked_at = NULL, revoked_reason = NULL WHERE name = ?`)
          .run(client.publicKey, t, client.name);
      } else {
        this.conn().prepare('UPDATE clients SET public_key = ? WHERE name = ?').run(client.publicKey, client.name);
      }
      return this.getClient(client.name)!;
    });
  }

  revokeClient(name: string, reason?: string): ClientRecord {
    assertNonEmpty('name', name);
    return this.tx(() => {
      const info = this.conn()
        .prepare(`UPDATE clients SET status = 'revoked', revoked_at = ?, revoked_reason = ? WHERE name = ?`)
        .run(this.now(), reason ?? null, name);
      if (info.changes === 0) throw new StoreError('not-found', `revokeClient: no enrolled client named ${JSON.stringify(name)}`);
      return this.getClient(name)!;
    });
  }

  getClient(name: string): ClientRecord | undefined {
    return this.guard(() => {
      const r = this.conn().prepare('SELECT * FROM clients WHERE name = ?').get(name) as Row | undefined;
      return r ? toClient(r) : undefined;
    });
  }

  listClients(): ClientRecord[] {
    return this.guard(() => (this.conn().prepare('SELECT * FROM clients ORDER BY name').all() as Row[]).map(toClient));
  }

  beginRound(round: number, plan: unknown, participants: string[] = []): RoundRecord {
    assertRoundNumber(round);
    const planJson = JSON.stringify(plan ?? null);
    return this.tx(() => {
      const latest = this.getRound(round);
      if (latest?.state === 'committed') throw new StoreError('invalid-state', `beginRound: round ${round} is already committed`);
      if (latest && OPEN_ROUND_STATES.includes(latest.state)) {
        throw new StoreError('invalid-state', `beginRound: round ${round} attempt ${latest.attempt} is still "${latest.state}"; abort it first`);
      }
      const attempt = (latest?.attempt ?? 0) + 1;
      const t = this.now();
      this.conn()
        .prepare(
          `INSERT INTO rounds (round, attempt, state, plan, participants, started_at, updated_at) VALUES (?, ?, 'planned', ?, ?, ?, ?)`,
        )
        .run(round, attempt, planJson, JSON.stringify(participants), t, t);
      return this.getRound(round)!;
    });
  }

  setRoundState(round: number, state: Exclude<RoundState, 'committed' | 'planned'>, extra: RoundStateExtra = {}): RoundRecord {
    assertRoundNumber(round);
    if (!['training', 'aggregating', 'aborted'].includes(state)) {
      throw new RangeError(`state: expected "training", "aggregating" or "aborted" (commit with commitRound), received ${JSON.stringify(state)}`);
    }
    return this.tx(() => {
      const cur = this.requireRound(round);
      assertTransition(round, cur.state, state);
      this.updateRound(cur, state, extra);
      return this.getRound(round)!;
    });
  }

  commitRound(round: number, commit: RoundCommit): CommittedRound {
    assertRoundNumber(round);
    assertChecksum(round, commit.checkpoint, commit.sha256);
    if (commit.ledgerLine !== undefined) assertLedgerLine(commit.ledgerLine);
    return this.tx(() => {
      const cur = this.requireRound(round);
      assertTransition(round, cur.state, 'committed');
      const t = this.now();
      this.updateRound(cur, 'committed', { participants: commit.participants }, t);
      const state = commit.serverState;
      this.conn()
        .prepare('INSERT INTO checkpoints (round, attempt, sha256, size, bytes, created_at, server_state, server_state_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(round, cur.attempt, commit.sha256, commit.checkpoint.byteLength, Buffer.from(commit.checkpoint), t, state ? Buffer.from(state) : null, state ? sha256Hex(state) : null);
      if (commit.ledgerLine !== undefined) {
        this.conn().prepare('INSERT INTO ledger (line, round, created_at) VALUES (?, ?, ?)').run(commit.ledgerLine, round, t);
      }
      return { round, attempt: cur.attempt, sha256: commit.sha256, bytes: commit.checkpoint.byteLength, committedAt: t };
    });
  }

  getRound(round: number): RoundRecord | undefined {
    return this.guard(() => {
      const r = this.conn().prepare('SELECT * FROM rounds WHERE round = ? ORDER BY attempt DESC LIMIT 1').get(round) as Row | undefined;
      return r ? toRound(r) : undefined;
    });
  }

  listRounds(): RoundRecord[] {
    return this.guard(() => (this.conn().prepare('SELECT * FROM rounds ORDER BY round, attempt').all() as Row[]).map(toRound));
  }

  latestCommitted(): CommittedRound | undefined {
    return this.guard(() => {
      const r = this.conn()
        .prepare(
          `SELECT c.round, c.attempt, c.sha256, c.size, r.committed_at FROM checkpoints c
           JOIN rounds r ON r.round = c.round AND r.attempt = c.attempt
           WHERE r.state = 'committed' ORDER BY c.round DESC LIMIT 1`,
        )
        .get() as Row | undefined;
      if (!r) return undefined;
      return { round: Number(r.round), attempt: Number(r.attempt), sha256: String(r.sha256), bytes: Number(r.size), committedAt: Number(r.committed_at) };
    });
  }

  loadCheckpoint(round: number): { bytes: Uint8Array; sha256: string; serverState?: Uint8Array } {
    assertRoundNumber(round);
    return this.guard(() => {
      const r = this.conn().prepare('SELECT sha256, bytes, server_state, server_state_sha256 FROM checkpoints WHERE round = ?').get(round) as Row | undefined;
      if (!r) throw new StoreError('not-found', `loadCheckpoint: round ${round} has no committed checkpoint`);
      const bytes = new Uint8Array(r.bytes as Buffer);
      const sha256 = String(r.sha256);
      try {
        assertChecksum(round, bytes, sha256);
      } catch (err) {
        throw new StoreError('corrupt', `loadCheckpoint: ${(err as Error).message}; the database was damaged outside fedlora`, { cause: err });
      }
      if (r.server_state === null || r.server_state === undefined) return { bytes, sha256 };
      const serverState = new Uint8Array(r.server_state as Buffer);
      if (sha256Hex(serverState) !== String(r.server_state_sha256)) {
        throw new StoreError('corrupt', `loadCheckpoint: the server optimizer state of round ${round} fails its SHA-256 check; the database was damaged outside fedlora`);
      }
      return { bytes, sha256, serverState };
    });
  }

  listCheckpoints(): CheckpointInfo[] {
    return this.guard(() =>
      (this.conn().prepare('SELECT round, attempt, sha256, size, created_at FROM checkpoints ORDER BY round').all() as Row[]).map((r) => ({
        round: Number(r.round),
        attempt: Number(r.attempt),
        sha256: String(r.sha256),
        bytes: Number(r.size),
        createdAt: Number(r.created_at),
      })),
    );
  }

  pruneCheckpoints(keepLast: number, keep: number[] = []): number[] {
    if (!Number.isInteger(keepLast) || keepLast < 1) throw new RangeError(`keepLast: expected an integer >= 1, received ${keepLast}`);
    const pruned = this.tx(() => {
      const rounds = (this.conn().prepare('SELECT round FROM checkpoints ORDER BY round DESC').all() as Row[]).map((r) => Number(r.round));
      const victims = rounds.slice(keepLast).filter((r) => !keep.includes(r));
      const del = this.conn().prepare('DELETE FROM checkpoints WHERE round = ?');
      for (const r of victims) del.run(r);
      return victims.sort((a, b) => a - b);
    });
    // Return freed pages to the file system (auto_vacuum = INCREMENTAL); outside the transaction.
    if (pruned.length > 0) this.guard(() => this.conn().pragma('incremental_vacuum'));
    return pruned;
  }

  summary(): StoreSummary {
    return this.guard(() => {
      const db = this.conn();
      const count = (sql: string): number => Number((db.prepare(sql).get() as Row).n);
      const rounds: Record<RoundState, number> = { planned: 0, training: 0, aggregating: 0, committed: 0, aborted: 0 };
      for (const r of db.prepare('SELECT state, COUNT(*) AS n FROM rounds GROUP BY state').all() as Row[]) rounds[r.state as RoundState] = Number(r.n);
      const cp = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM checkpoints').get() as Row;
      const fed = this.getFederation();
      const latest = this.latestCommitted();
      return {
        ...(fed ? { federation: { id: fed.id, state: fed.state } } : {}),
        clients: { enrolled: count("SELECT COUNT(*) AS n FROM clients WHERE status = 'enrolled'"), revoked: count("SELECT COUNT(*) AS n FROM clients WHERE status = 'revoked'") },
        rounds,
        ...(latest ? { latestCommitted: latest.round } : {}),
        checkpoints: { count: Number(cp.n), bytes: Number(cp.bytes) },
        ledgerEntries: count('SELECT COUNT(*) AS n FROM ledger'),
        auditEvents: count('SELECT COUNT(*) AS n FROM audit'),
      };
    });
  }

  abortIncompleteRounds(reason: string): RoundRecord[] {
    assertNonEmpty('reason', reason);
    return this.tx(() => {
      const open = (this.conn().prepare(`SELECT * FROM rounds WHERE state IN (${OPEN_STATES_SQL}) ORDER BY round, attempt`).all() as Row[]).map(toRound);
      for (const r of open) this.updateRound(r, 'aborted', { reason });
      return open.map((r) => this.getRound(r.round)!);
    });
  }

  appendLedger(line: string, round?: number): number {
    assertLedgerLine(line);
    if (round !== undefined) assertRoundNumber(round);
    return this.tx(() => {
      const info = this.conn().prepare('INSERT INTO ledger (line, round, created_at) VALUES (?, ?, ?)').run(line, round ?? null, this.now());
      return Number(info.lastInsertRowid);
    });
  }

  listLedger(afterSeq = 0): LedgerEntry[] {
    return this.guard(() =>
      (this.conn().prepare('SELECT * FROM ledger WHERE seq > ? ORDER BY seq').all(afterSeq) as Row[]).map((r) => ({
        seq: Number(r.seq),
        line: String(r.line),
        ...(r.round === null ? {} : { round: Number(r.round) }),
        createdAt: Number(r.created_at),
      })),
    );
  }

  appendAudit(event: AuditEvent): AuditRecord {
    assertNonEmpty('event', event.event);
    const detail = event.detail === undefined ? null : JSON.stringify(event.detail);
    return this.tx(() => {
      const at = this.now();
      const info = this.conn().prepare('INSERT INTO audit (event, client, detail, at) VALUES (?, ?, ?, ?)').run(event.event, event.client ?? null, detail, at);
      return { ...event, id: Number(info.lastInsertRowid), at };
    });
  }

  listAudit(options: { limit?: number; event?: string; client?: string } = {}): AuditRecord[] {
    const limit = options.limit ?? 1000;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit: expected an integer >= 1, received ${limit}`);
    return this.guard(() => {
      const rows = this.conn()
        .prepare(
          `SELECT * FROM (SELECT * FROM audit WHERE (@event IS NULL OR event = @event) AND (@client IS NULL OR client = @client) ORDER BY id DESC LIMIT @limit) ORDER BY id`,
        )
        .all({ event: options.event ?? null, client: options.client ?? null, limit }) as Row[];
      return rows.map((r) => ({
        id: Number(r.id),
        event: String(r.event),
        ...(r.client === null ? {} : { client: String(r.client) }),
        ...(r.detail === null ? {} : { detail: JSON.parse(String(r.detail)) as unknown }),
        at: Number(r.at),
      }));
    });
  }

  isSecAggKeyUsed(publicKeyHex: string): boolean {
    assertNonEmpty('publicKeyHex', publicKeyHex);
    return this.conn().prepare('SELECT 1 FROM secagg_keys WHERE public_key = ?').get(publicKeyHex) !== undefined;
  }

  recordSecAggKey(publicKeyHex: string): void {
    assertNonEmpty('publicKeyHex', publicKeyHex);
    this.tx(() => this.conn().prepare('INSERT OR IGNORE INTO secagg_keys (public_key, created_at) VALUES (?, ?)').run(publicKeyHex, this.now()));
  }

  recordNonce(nonce: string, expiresAt: number): boolean {
    assertNonEmpty('nonce', nonce);
    if (!Number.isFinite(expiresAt)) throw new RangeError(`expiresAt: expected a finite time in ms, received ${expiresAt}`);
    // Nonces are committed without an fsync (synchronous=NORMAL: still atomic and consistent in WAL
    // mode; ~100x faster). A power cut may forget the last few, which only reopens replay of
    // those requests until their timestamps leave the verifier's skew window.
    const db = this.conn();
    const relax = !db.inTransaction && this.path !== ':memory:';
    if (relax) db.pragma('synchronous = NORMAL');
    try {
      return this.tx(() => {
        db.prepare('DELETE FROM nonces WHERE expires_at <= ?').run(this.now());
        return db.prepare('INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?, ?)').run(nonce, Math.ceil(expiresAt)).changes === 1;
      });
    } finally {
      if (relax) db.pragma('synchronous = FULL');
    }
  }

  close(): void {
    if (!this.db) return;
    const db = this.db;
    this.db = undefined;
    db.close();
  }

  private updateRound(cur: RoundRecord, state: RoundState, extra: RoundStateExtra, t = this.now()): void {
    this.conn()
      .prepare(
        `UPDATE rounds SET state = ?, reason = COALESCE(?, reason), participants = COALESCE(?, participants), updated_at = ?, committed_at = ?
         WHERE round = ? AND attempt = ?`,
      )
      .run(
        state,
        extra.reason ?? null,
        extra.participants ? JSON.stringify(extra.participants) : null,
        t,
        state === 'committed' ? t : null,
        cur.round,
        cur.attempt,
      );
  }

  private requireRound(round: number): RoundRecord {
    const cur = this.getRound(round);
    if (!cur) throw new StoreError('not-found', `round ${round} was never begun`);
    return cur;
  }

  private conn(): Database.Database {
    if (!this.db) throw new StoreError('closed', `${this.path}: the store is closed`);
    return this.db;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof StoreError || err instanceof TypeError || err instanceof RangeError) throw err;
      throw toStoreError(err, this.path);
    }
  }

  /** Runs `fn` in an IMMEDIATE transaction (the write lock is taken up front, so it cannot fail half-way on upgrade). */
  private tx<T>(fn: () => T): T {
    return this.guard(() => {
      const db = this.conn();
      if (db.inTransaction) return fn();
      return db.transaction(fn).immediate();
    });
  }
}

function toFederation(r: Row): FederationRecord {
  return {
    id: String(r.id),
    config: JSON.parse(String(r.config)) as unknown,
    state: r.state as FederationState,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toClient(r: Row): ClientRecord {
  return {
    name: String(r.name),
    publicKey: String(r.public_key),
    status: r.status as ClientRecord['status'],
    enrolledAt: Number(r.enrolled_at),
    ...(r.revoked_at === null ? {} : { revokedAt: Number(r.revoked_at) }),
    ...(r.revoked_reason === null ? {} : { revokedReason: String(r.revoked_reason) }),
  };
}

function toRound(r: Row): RoundRecord {
  return {
    round: Number(r.round),
    attempt: Number(r.attempt),
    state: r.state as RoundState,
    plan: JSON.parse(String(r.plan)) as unknown,
    participants: JSON.parse(String(r.participants)) as string[],
    ...(r.reason === null ? {} : { reason: String(r.reason) }),
    startedAt: Number(r.started_at),
    updatedAt: Number(r.updated_at),
    ...(r.committed_at === null ? {} : { committedAt: Number(r.committed_at) }),
  };
}
