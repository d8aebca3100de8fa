import { loadMemberList } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import { encodePublicKey, loadIdentity } from '@fedlora/transport-grpc';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { addClient } from './add-client.js';
import { localPlan } from './federation-plan.js';
import { writeFederation } from './write-federation.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function federation(insecure = false): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-add-'));
  dirs.push(d);
  const out = join(d, 'fed');
  await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-add', port: 7555, insecure, sampleData: false }), out, { random: seededRandomBytes('add') });
  return out;
}

describe('addClient', () => {
  it('enrols a new institution: certificate under the same CA, identity, config, and its key in coordinator.yaml', async () => {
    const out = await federation();
    const before = readFileSync(join(out, 'coordinator.yaml'), 'utf8');
    const m = await addClient(out, { name: 'inst-9', dataPath: '/srv/inst-9.txt' }, { random: seededRandomBytes('new') });
    const after = readFileSync(join(out, 'coordinator.yaml'), 'utf8');
    expect(after.startsWith(before.split('\n').slice(0, 3).join('\n'))).toBe(true); // header comments kept
    const coord = parse(after) as { clients: Array<{ name: string; publicKey: string }> };
    expect(coord.clients.map((c) => c.name)).toEqual(['inst-1', 'inst-2', 'inst-9']);
    expect(coord.clients[2]!.publicKey).toBe(encodePublicKey(loadIdentity(join(out, 'identities/inst-9.key.json')).publicKey));
    const ca = new X509Certificate(readFileSync(join(out, 'pki/ca.crt')));
    expect(new X509Certificate(readFileSync(join(out, 'pki/clients/inst-9.crt'))).verify(ca.publicKey)).toBe(true);
    const client = parse(readFileSync(join(out, 'clients/inst-9.yaml'), 'utf8'));
    expect(client).toMatchObject({ name: 'inst-9', federationId: 'fed-add', coordinator: '127.0.0.1:7555', data: { path: '/srv/inst-9.txt' } });
    expect(m.warnings.join('\n')).toMatch(/restart the coordinator to admit inst-9/);
    // The authority re-signed the member list with the new institution; every institution needs the new version.
    const authorityKey = encodePublicKey(loadIdentity(join(out, 'authority/federation-authority.key.json')).publicKey);
    expect([...loadMemberList(join(out, 'members.json'), authorityKey, 'fed-add').keys()]).toEqual(['inst-1', 'inst-2', 'inst-9']);
    expect(JSON.parse(readFileSync(join(out, 'members.json'), 'utf8')).version).toBe(2);
    expect(m.warnings.join('\n')).toMatch(/members.json is now version 2/);
  });

  it('refuses to enrol without the federation authority key (it alone can add a member to members.json)', async () => {
    const out = await federation();
    renameSync(join(out, 'authority/federation-authority.key.json'), join(out, 'authority.offline'));
    await expect(addClient(out, { name: 'inst-5' }, { random: seededRandomBytes(1) })).rejects.toThrow(/federation authority's key is needed/);
  });

  it('refuses a name already enrolled, and enrolment without the CA key', async () => {
    const out = await federation();
    await expect(addClient(out, { name: 'inst-1' }, { random: seededRandomBytes(1) })).rejects.toThrow(/"inst-1" is already enrolled/);
    renameSync(join(out, 'pki/ca.key'), join(out, 'ca.key.offline'));
    await expect(addClient(out, { name: 'inst-3' }, { random: seededRandomBytes(2) })).rejects.toThrow(/the federation CA key is needed to enrol a client; copy it back/);
  });

  it('works without PKI for an insecure federation and refuses a directory without a federation', async () => {
    const out = await federation(true);
    const m = await addClient(out, { name: 'inst-3' }, { random: seededRandomBytes(3) });
    expect(m.client.ship).toEqual(['clients/inst-3.yaml', 'identities/inst-3.key.json', 'members.json']);
    expect(parse(readFileSync(join(out, 'clients/inst-3.yaml'), 'utf8')).insecure).toBe(true);
    await expect(addClient(join(out, 'nope'), { name: 'x' }, { random: seededRandomBytes(4) })).rejects.toThrow(/holds no federation/);
  });
});
