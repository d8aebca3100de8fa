/**
 * `fedlora provision --revoke NAME --out DIR`: withdraws an institution from the federation.
 * The revocation is written to the coordinator's store (SQLite in WAL mode, so this works while
 * the coordinator runs, which reads enrolment from the store: effective without a restart), an
 * audit record says who was revoked and why, and the key is removed from coordinator.yaml so a
 * fresh data directory would not enrol it again. The store keeps the client as `revoked`: a
 * later config containing the same name does not reinstate it.
 */
import { openSqliteStore } from '@fedlora/store';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { isMap, isSeq, parseDocument } from 'yaml';
import { FileWriter } from './institution-files.js';
import { AUTHORITY_KEY_FILE, coordinatorKeyOf, readMembership, writeMembership } from './membership-files.js';

/** The coordinator's database file inside its data directory (as apps/coordinator opens it). */
export const STORE_FILE = 'fedlora.db';

/** Options of `revokeClient`. */
export interface RevokeOptions {
  reason?: string;
  /** The coordinator's database; default `<dataDir>/fedlora.db` from coordinator.yaml. */
  storePath?: string;
  /** Who ran the revocation, for the audit record (default: the OS user). */
  operator?: string;
}

/** What `fedlora provision --revoke --json` prints. */
export interface RevokeManifest {
  name: string;
  federationId: string;
  store: string;
  removedFromConfig: boolean;
  revokedAt: number;
  /**
   * Whether members.json was re-signed without the institution (needs the authority key in
   * authority/; otherwise re-sign it where that key is kept and give it to every institution).
   */
  membersReissued: boolean;
}

/** Re-signs members.json without `name` when the authority key is at hand. */
function reissueWithout(outDir: string, name: string, federationId: string): boolean {
  const membership = readMembership(outDir);
  if (!membership || !existsSync(join(outDir, AUTHORITY_KEY_FILE)) || !membership.members.some((m) => m.name === name)) return false;
  const w = new FileWriter(outDir, Date.now);
  writeMembership(w, federationId, membership.members.filter((m) => m.name !== name), coordinatorKeyOf(outDir), membership.version + 1);
  return true;
}

/** Revokes `name` in the federation at `outDir`. RangeError when it is not a member. */
export function revokeClient(outDir: string, name: string, options: RevokeOptions = {}): RevokeManifest {
  const coordinatorPath = join(outDir, 'coordinator.yaml');
  if (!existsSync(coordinatorPath)) throw new RangeError(`--out: ${outDir} holds no federation (no coordinator.yaml)`);
  const doc = parseDocument(readFileSync(coordinatorPath, 'utf8'));
  if (doc.errors.length > 0) throw new RangeError(`${coordinatorPath}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const federationId = String(doc.get('federationId') ?? '');
  const dataDir = String(doc.get('dataDir') ?? '');
  const storePath = options.storePath ?? join(isAbsolute(dataDir) ? dataDir : resolve(outDir, dataDir), STORE_FILE);

  const clients = doc.get('clients');
  const index = isSeq(clients) ? clients.items.findIndex((c) => isMap(c) && c.get('name') === name) : -1;
  const publicKey = index >= 0 && isSeq(clients) ? String((clients.items[index] as { get(k: string): unknown }).get('publicKey')) : undefined;

  const store = openSqliteStore(storePath);
  try {
    if (!store.getClient(name)) {
      if (!publicKey) throw new RangeError(`--revoke: "${name}" is not a member of federation ${federationId} (not in ${coordinatorPath} nor in ${storePath})`);
      store.upsertClient({ name, publicKey }); // never started with it yet: record it so it stays revoked
    }
    const revoked = store.revokeClient(name, options.reason);
    store.appendAudit({ event: 'client.revoked', client: name, detail: { reason: options.reason ?? null, by: options.operator ?? process.env.USER ?? 'unknown' } });
    if (index >= 0 && isSeq(clients)) {
      clients.items.splice(index, 1);
      const tmp = `${coordinatorPath}.tmp-${process.pid}`;
      writeFileSync(tmp, doc.toString(), { mode: statSync(coordinatorPath).mode & 0o777 });
      renameSync(tmp, coordinatorPath);
    }
    return { name, federationId, store: storePath, removedFromConfig: index >= 0, revokedAt: revoked.revokedAt!, membersReissued: reissueWithout(outDir, name, federationId) };
  } finally {
    store.close();
  }
}
