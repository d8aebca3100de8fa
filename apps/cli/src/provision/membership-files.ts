/**
 * The federation authority's files in a federation directory (issue 16, finding 1):
 *
 *   DIR/authority/federation-authority.key.json  the authority's Ed25519 key (0600; keep it offline
 *                                                 with pki/ca.key: whoever holds it decides membership)
 *   DIR/members.json                              the member list it signed (every institution gets it)
 *   DIR/trusted-keys.json                         writer -> Ed25519 key, for `fedlora audit --trusted-keys`
 *
 * Institutions pin the authority's public key in their config (membership.authorityKey) and
 * decline secure rounds whose roster is not drawn from members.json. The coordinator's key is
 * never the authority's: a coordinator cannot sign itself new members.
 */
import { signMemberList, verifyMemberList, type Member } from '@fedlora/federation';
import { TRUSTED_KEYS_FILE, trustedKeysJson } from '@fedlora/privacy';
import { encodePublicKey, generateIdentity, loadIdentity, saveIdentity, wipeIdentity, type Identity } from '@fedlora/transport-grpc';
import type { RandomBytes } from '@fedlora/tensor';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileWriter } from './institution-files.js';

/** Where the authority's secret key lives in a federation directory. */
export const AUTHORITY_KEY_FILE = 'authority/federation-authority.key.json';
/** The signed member list. */
export const MEMBERS_FILE = 'members.json';
/** The auditor's trusted keys (ledger writer -> Ed25519 public key; format of @fedlora/privacy trusted-keys.ts). */
export { TRUSTED_KEYS_FILE };

/** Creates the federation authority's key; returns its public key (base64). */
export function createAuthority(w: FileWriter, random: RandomBytes): string {
  w.dir('authority', 0o700);
  const id = generateIdentity('federation-authority', random);
  saveIdentity(join(w.outDir, AUTHORITY_KEY_FILE), id);
  w.files.push({ path: AUTHORITY_KEY_FILE, mode: '600' });
  const key = encodePublicKey(id.publicKey);
  wipeIdentity(id);
  return key;
}

/** Signs `members` with the authority key in `w.outDir`, writes members.json and trusted-keys.json, and returns members.json's text. */
export function writeMembership(w: FileWriter, federationId: string, members: Member[], coordinatorKey: string, version: number): string {
  const authority = loadAuthority(w.outDir);
  let text: string;
  try {
    const signed = signMemberList({ federationId, version, issuedAt: new Date(w.now()).toISOString(), members }, authority.secretKey);
    text = `${JSON.stringify(signed, null, 2)}\n`;
    w.put(MEMBERS_FILE, text);
  } finally {
    wipeIdentity(authority);
  }
  const trusted: Record<string, string> = { coordinator: coordinatorKey };
  for (const m of members) trusted[m.name] = m.publicKey;
  w.put(TRUSTED_KEYS_FILE, trustedKeysJson(trusted));
  return text;
}

/** The current signed member list of the federation in `outDir` (undefined for a federation provisioned before member lists). */
export function readMembership(outDir: string): { members: Member[]; version: number; authorityKey: string; federationId: string } | undefined {
  const path = join(outDir, MEMBERS_FILE);
  if (!existsSync(path)) return undefined;
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { authorityKey: string; federationId: string; version: number };
  const members = verifyMemberList(doc, doc.authorityKey, undefined, path);
  return { members: [...members].map(([name, k]) => ({ name, publicKey: encodePublicKey(k) })), version: doc.version, authorityKey: doc.authorityKey, federationId: doc.federationId };
}

/** The coordinator's public key from trusted-keys.json (written at provisioning). */
export function coordinatorKeyOf(outDir: string): string {
  const t = JSON.parse(readFileSync(join(outDir, TRUSTED_KEYS_FILE), 'utf8')) as Record<string, string>;
  if (!t.coordinator) throw new RangeError(`${join(outDir, TRUSTED_KEYS_FILE)}: expected the coordinator's key, received none`);
  return t.coordinator;
}

function loadAuthority(outDir: string): Identity {
  const path = join(outDir, AUTHORITY_KEY_FILE);
  if (!existsSync(path)) throw new RangeError(`${path}: the federation authority's key is needed to sign the member list; copy it back from offline storage`);
  return loadIdentity(path);
}
