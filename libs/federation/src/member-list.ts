/**
 * The federation's member list: institution names and Ed25519 identity keys, signed by the
 * federation authority, a key the institutions accept and the coordinator does not hold. Each
 * client checks every SecAgg+ roster against it (see secure-membership.ts), so a coordinator
 * cannot put identities it made itself into a cohort next to an institution (issue 16, finding
 * 1): the sum of an honest member and identities the coordinator controls would be that
 * member's update. The signed bytes are a domain label and canonical JSON (members sorted by
 * name), so every party hashes the same document whatever its key order on disk.
 */
import { sign, verify } from '@fedlora/secagg';
import { readFileSync } from 'node:fs';

/** Kind tag of a signed member list file. */
export const MEMBER_LIST_KIND = 'fedlora.members.v1';

/** One member: its name (the certificate common name) and Ed25519 identity key, base64. */
export interface Member {
  name: string;
  publicKey: string;
}

/** The content the authority signs. */
export interface MemberList {
  federationId: string;
  /** Increases with each re-issue (an institution added or withdrawn). */
  version: number;
  issuedAt: string;
  members: Member[];
}

/** A member list with the authority's key and signature, as written to members.json. */
export interface SignedMemberList extends MemberList {
  kind: typeof MEMBER_LIST_KIND;
  /** The federation authority's Ed25519 public key (base64); clients compare it with the one pinned in their config. */
  authorityKey: string;
  /** Ed25519 signature (base64) over memberListSigningBytes. */
  signature: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** The exact bytes the authority signs: label, newline, canonical JSON. */
export function memberListSigningBytes(list: MemberList): Uint8Array {
  const members = [...list.members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((m) => ({ name: m.name, publicKey: m.publicKey }));
  const body = JSON.stringify({ federationId: list.federationId, version: list.version, issuedAt: list.issuedAt, members });
  return new Uint8Array(Buffer.from(`${MEMBER_LIST_KIND}\n${body}`, 'utf8'));
}

/** Signs `list` with the authority's 64-byte secret key (tweetnacl layout). */
export function signMemberList(list: MemberList, authoritySecretKey: Uint8Array): SignedMemberList {
  checkContent(list, 'member list');
  const signature = sign(memberListSigningBytes(list), authoritySecretKey);
  const members = [...list.members].sort((a, b) => (a.name < b.name ? -1 : 1));
  return { kind: MEMBER_LIST_KIND, federationId: list.federationId, version: list.version, issuedAt: list.issuedAt, members, authorityKey: b64(authoritySecretKey.subarray(32)), signature: b64(signature) };
}

/**
 * Checks a signed member list against the authority key the institution pinned, and returns
 * name -> identity key. Throws RangeError naming what was wrong: another authority, a bad
 * signature, another federation, malformed or duplicate entries.
 */
export function verifyMemberList(doc: unknown, authorityKey: Uint8Array | string, federationId: string | undefined, label = 'member list'): Map<string, Uint8Array> {
  const pinned = typeof authorityKey === 'string' ? decodeKey(authorityKey, `${label}: the pinned authority key`) : authorityKey;
  if (typeof doc !== 'object' || doc === null) throw new RangeError(`${label}: expected a JSON object, received ${doc === null ? 'null' : typeof doc}`);
  const d = doc as Partial<SignedMemberList>;
  if (d.kind !== MEMBER_LIST_KIND) throw new RangeError(`${label}: kind: expected "${MEMBER_LIST_KIND}", received ${JSON.stringify(d.kind)}`);
  const list = d as SignedMemberList;
  checkContent(list, label);
  if (list.authorityKey !== b64(pinned)) {
    throw new RangeError(`${label}: signed by authority key ${String(list.authorityKey).slice(0, 12)}…, but this institution accepts ${b64(pinned).slice(0, 12)}… (membership.authorityKey); ask the federation authority for the list it signed`);
  }
  const sig = Buffer.from(String(list.signature ?? ''), 'base64');
  if (!verify(memberListSigningBytes(list), new Uint8Array(sig), pinned)) throw new RangeError(`${label}: the signature does not verify with the federation authority's key; the list was altered or forged`);
  if (federationId !== undefined && list.federationId !== federationId) throw new RangeError(`${label}: federationId: expected "${federationId}", received "${list.federationId}"`);
  return new Map(list.members.map((m) => [m.name, decodeKey(m.publicKey, `${label}: member ${m.name}`)]));
}

/** Reads members.json and verifies it (see verifyMemberList). */
export function loadMemberList(path: string, authorityKey: string, federationId: string | undefined): Map<string, Uint8Array> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new RangeError(`member list ${path}: cannot read it as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return verifyMemberList(doc, authorityKey, federationId, `member list ${path}`);
}

function checkContent(list: MemberList, label: string): void {
  if (typeof list.federationId !== 'string' || !NAME.test(list.federationId)) throw new RangeError(`${label}: federationId: expected 1..64 letters, digits, ".", "_" or "-", received ${JSON.stringify(list.federationId)}`);
  if (!Number.isInteger(list.version) || list.version < 1) throw new RangeError(`${label}: version: expected an integer >= 1, received ${JSON.stringify(list.version)}`);
  if (typeof list.issuedAt !== 'string') throw new RangeError(`${label}: issuedAt: expected an ISO date string, received ${JSON.stringify(list.issuedAt)}`);
  if (!Array.isArray(list.members) || list.members.length === 0) throw new RangeError(`${label}: members: expected a non-empty array`);
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const m of list.members) {
    if (typeof m?.name !== 'string' || !NAME.test(m.name)) throw new RangeError(`${label}: members: expected names of 1..64 letters, digits, ".", "_" or "-", received ${JSON.stringify(m?.name)}`);
    decodeKey(m.publicKey, `${label}: member ${m.name}`);
    if (names.has(m.name)) throw new RangeError(`${label}: members: "${m.name}" appears twice`);
    if (keys.has(m.publicKey)) throw new RangeError(`${label}: members: the key of "${m.name}" is also another member's key`);
    names.add(m.name);
    keys.add(m.publicKey);
  }
}

function decodeKey(text: unknown, label: string): Uint8Array {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (bytes.length !== 32 || bytes.toString('base64') !== text) throw new RangeError(`${label}: expected a 32-byte Ed25519 public key in base64, received ${JSON.stringify(String(text).slice(0, 60))}`);
  return new Uint8Array(bytes);
}
