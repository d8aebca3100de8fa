import { openSqliteStore } from '@fedlora/store';
import { seededRandomBytes } from '@fedlora/tensor';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { localPlan } from './federation-plan.js';
import { revokeClient, STORE_FILE } from './revoke-client.js';
import { writeFederation } from './write-federation.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
async function federation(): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-revoke-'));
  dirs.push(d);
  const out = join(d, 'fed');
  await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-rv', port: 7556, insecure: true, sampleData: false }), out, { random: seededRandomBytes('rv') });
  return out;
}

describe('revokeClient', () => {
  it('revokes in the store a running coordinator reads, audits it, and drops the key from coordinator.yaml', async () => {
    const out = await federation();
    const running = openSqliteStore(join(out, 'data/coordinator', STORE_FILE)); // the coordinator's open connection
    const cfg = parse(readFileSync(join(out, 'coordinator.yaml'), 'utf8')) as { clients: Array<{ name: string; publicKey: string }> };
    for (const c of cfg.clients) running.upsertClient(c);

    const m = revokeClient(out, 'inst-2', { reason: 'left the consortium', operator: 'alice' });

    expect(m).toMatchObject({ name: 'inst-2', federationId: 'fed-rv', removedFromConfig: true, membersReissued: true });
    // The authority re-signed members.json without it: institutions that take the new list decline rosters naming it.
    const members = JSON.parse(readFileSync(join(out, 'members.json'), 'utf8')) as { version: number; members: Array<{ name: string }> };
    expect({ version: members.version, names: members.members.map((x) => x.name) }).toEqual({ version: 2, names: ['inst-1'] });
    expect(running.getClient('inst-2')).toMatchObject({ status: 'revoked', revokedReason: 'left the consortium' });
    expect(running.listAudit({ event: 'client.revoked' })).toEqual([expect.objectContaining({ client: 'inst-2', detail: { reason: 'left the consortium', by: 'alice' } })]);
    const after = parse(readFileSync(join(out, 'coordinator.yaml'), 'utf8')) as { clients: Array<{ name: string }> };
    expect(after.clients.map((c) => c.name)).toEqual(['inst-1']);
    // A config that still lists the name later does not reinstate it.
    running.upsertClient(cfg.clients[1]!);
    expect(running.getClient('inst-2')!.status).toBe('revoked');
    running.close();
  });

  it('records the revocation even before the coordinator first ran', async () => {
    const out = await federation();
    revokeClient(out, 'inst-1');
    const store = openSqliteStore(join(out, 'data/coordinator', STORE_FILE));
    expect(store.getClient('inst-1')!.status).toBe('revoked');
    store.close();
  });

  it('refuses a name that is not a member', async () => {
    const out = await federation();
    expect(() => revokeClient(out, 'mallory')).toThrow(/"mallory" is not a member of federation fed-rv/);
  });
});
