import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import { loadMemberList, memberListSigningBytes, signMemberList, verifyMemberList, type MemberList } from './member-list.js';

const rng = seededRandomBytes('member-list-test');
const authority = generateIdentity(rng);
const coordinatorKey = generateIdentity(rng);
const key = () => Buffer.from(generateIdentity(rng).publicKey).toString('base64');
const list: MemberList = { federationId: 'fed', version: 2, issuedAt: '2026-12-05T00:00:00.000Z', members: [{ name: 'b', publicKey: key() }, { name: 'a', publicKey: key() }] };

describe('the federation member list', () => {
  it('verifies against the pinned authority key and yields name -> key', () => {
    const signed = signMemberList(list, authority.secretKey);
    const m = verifyMemberList(JSON.parse(JSON.stringify(signed)), Buffer.from(authority.publicKey).toString('base64'), 'fed');
    expect([...m.keys()]).toEqual(['a', 'b']);
    expect(Buffer.from(m.get('b')!).toString('base64')).toBe(list.members[0]!.publicKey);
  });

  it('signs canonical bytes: member order on disk does not matter', () => {
    expect(memberListSigningBytes(list)).toEqual(memberListSigningBytes({ ...list, members: [...list.members].reverse() }));
  });

  it('refuses a list with a member added after signing (a coordinator slipping in its own identity)', () => {
    const signed = signMemberList(list, authority.secretKey);
    signed.members.push({ name: 'sybil', publicKey: key() });
    expect(() => verifyMemberList(signed, authority.publicKey, 'fed')).toThrow(/signature does not verify/);
  });

  it('refuses a list signed by another key, even one re-signed in full (the coordinator\'s key is not the authority)', () => {
    const forged = signMemberList({ ...list, members: [...list.members, { name: 'sybil', publicKey: key() }] }, coordinatorKey.secretKey);
    expect(() => verifyMemberList(forged, authority.publicKey, 'fed')).toThrow(/this institution accepts/);
  });

  it('refuses another federation\'s list, duplicates and malformed keys', () => {
    expect(() => verifyMemberList(signMemberList(list, authority.secretKey), authority.publicKey, 'other')).toThrow(/federationId: expected "other"/);
    expect(() => signMemberList({ ...list, members: [list.members[0]!, list.members[0]!] }, authority.secretKey)).toThrow(/appears twice/);
    expect(() => signMemberList({ ...list, members: [{ name: 'x', publicKey: 'AAAA' }] }, authority.secretKey)).toThrow(/32-byte Ed25519/);
  });

  it('loads members.json and names the file in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'members-'));
    const path = join(dir, 'members.json');
    writeFileSync(path, JSON.stringify(signMemberList(list, authority.secretKey)));
    expect(loadMemberList(path, Buffer.from(authority.publicKey).toString('base64'), 'fed').size).toBe(2);
    writeFileSync(path, '{');
    expect(() => loadMemberList(path, Buffer.from(authority.publicKey).toString('base64'), 'fed')).toThrow(/members.json: cannot read it as JSON/);
  });
});
