/**
 * Issue 16 finding 1: the production flow. Institutions generate their own keys
 * (`fedlora client-init`); `fedlora provision --project --requests` works from their requests and
 * writes no institution private key; the bundle it returns makes a config the client loader
 * accepts, pointing at the keys the institution kept.
 */
import { loadMemberList } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import { encodePublicKey, loadIdentity } from '@fedlora/transport-grpc';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { addClient } from './add-client.js';
import { clientInit } from './client-init.js';
import { ProjectFileSchema, projectPlan } from './project-file.js';
import { loadRequests } from './requested-institution.js';
import { writeFederation } from './write-federation.js';

const REPO = new URL('../../../../', import.meta.url);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-req-'));
  dirs.push(d);
  return d;
}
/** Every file under `dir`, recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
}

const NAMES = ['hospital-a', 'hospital-b'];
const project = ProjectFileSchema.parse({ federationId: 'onc', coordinator: { host: 'fl.example.org', port: 7443 }, institutions: NAMES.map((name) => ({ name })) });

/** Each institution runs client-init on its own machine; the operator receives only the request files. */
async function enrol(requests: string): Promise<Map<string, string>> {
  const homes = new Map<string, string>();
  for (const name of NAMES) {
    const home = join(temp(), name);
    const m = await clientInit(home, { name, federationId: 'onc', random: seededRandomBytes(`init-${name}`) });
    expect(m.files).toEqual([
      { path: 'identity.key.json', mode: '600' },
      { path: 'tls.key', mode: '600' },
      { path: `${name}.request.json`, mode: '644' },
    ]);
    copyFileSync(join(home, m.request), join(requests, m.request));
    homes.set(name, home);
  }
  return homes;
}

describe('provision from enrolment requests', () => {
  it('writes no institution private key, and the returned bundle runs with the keys each institution kept', async () => {
    const requests = temp();
    const homes = await enrol(requests);
    const plan = { ...projectPlan(project), requests: await loadRequests(requests, NAMES, 'onc') };
    const out = join(temp(), 'fed');
    const m = await writeFederation(plan, out, { random: seededRandomBytes('prov-req') });

    // No file the operator wrote holds an institution's Ed25519 seed or TLS key.
    const secrets = NAMES.flatMap((n) => {
      const home = homes.get(n)!;
      const seed = JSON.parse(readFileSync(join(home, 'identity.key.json'), 'utf8')).seed as string;
      const tls = readFileSync(join(home, 'tls.key'), 'utf8').split('\n').slice(1, 3).join('');
      return [seed, tls];
    });
    const written = walk(out).map((f) => readFileSync(f, 'utf8'));
    for (const s of secrets) expect(written.some((text) => text.replace(/\n/g, '').includes(s))).toBe(false);
    expect(m.files.map((f) => f.path).filter((p) => /hospital-/.test(p) && /\.key/.test(p))).toEqual([]);
    expect(m.warnings.join('\n')).not.toMatch(/LOCAL\/TEST ONLY/);

    const { loadClientConfig } = (await import(pathToFileURL(new URL('apps/client/src/config.ts', REPO).pathname).href)) as typeof import('../../../client/src/config.js');
    for (const c of m.clients) {
      const home = homes.get(c.name)!;
      for (const f of c.ship) copyFileSync(join(out, f), join(home, f.split('/').pop()!));
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(join(home, 'data', 'train.txt'), 'text\n');
      const cfg = loadClientConfig(join(home, 'client.yaml'), {});
      const identity = loadIdentity(cfg.identity.secretKeyFile);
      expect(encodePublicKey(identity.publicKey)).toBe(c.publicKey);
      const members = loadMemberList(cfg.membership!.file, cfg.membership!.authorityKey, 'onc');
      expect(encodePublicKey(members.get(c.name)!)).toBe(c.publicKey);
      // The certificate the CA issued is for the TLS key the institution kept.
      const cert = new X509Certificate(readFileSync(cfg.tls!.cert!));
      expect(cert.subject).toBe(`CN=${c.name}`);
      expect(cert.verify(new X509Certificate(readFileSync(cfg.tls!.ca)).publicKey)).toBe(true);
      expect(createPublicKey(createPrivateKey(readFileSync(cfg.tls!.key!))).export({ type: 'spki', format: 'pem' })).toBe(cert.publicKey.export({ type: 'spki', format: 'pem' }));
    }
    const coordinatorYaml = readFileSync(join(out, 'coordinator.yaml'), 'utf8');
    for (const c of m.clients) expect(coordinatorYaml).toContain(c.publicKey);
  });

  it('refuses an altered request and names a missing one with the command that makes it', async () => {
    const requests = temp();
    await enrol(requests);
    const path = join(requests, 'hospital-b.request.json');
    const req = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...req, publicKey: JSON.parse(readFileSync(join(requests, 'hospital-a.request.json'), 'utf8')).publicKey }));
    await expect(loadRequests(requests, [...NAMES, 'clinic-c'], 'onc')).rejects.toThrow(/hospital-b.request.json: the signature does not verify[\s\S]*clinic-c.request.json: missing \(the institution creates it with: fedlora client-init --name clinic-c/);
  });

  it('enrols one more institution later from its request (--add-client --request), again writing none of its keys', async () => {
    const requests = temp();
    await enrol(requests);
    const out = join(temp(), 'fed');
    await writeFederation({ ...projectPlan(project), requests: await loadRequests(requests, NAMES, 'onc') }, out, { random: seededRandomBytes('prov-add') });
    const home = join(temp(), 'clinic-c');
    const init = await clientInit(home, { name: 'clinic-c', federationId: 'onc', random: seededRandomBytes('init-c') });
    const request = JSON.parse(readFileSync(join(home, init.request), 'utf8')) as unknown;
    const m = await addClient(out, { name: 'clinic-c' }, { random: seededRandomBytes('add-c'), request });
    expect(m.client.ship).toEqual(['institutions/clinic-c/client.yaml', 'institutions/clinic-c/members.json', 'institutions/clinic-c/client.crt', 'institutions/clinic-c/ca.crt']);
    expect(m.files.map((f) => f.path).filter((p) => p.includes('clinic-c') && /\.key/.test(p))).toEqual([]);
    const seed = JSON.parse(readFileSync(join(home, 'identity.key.json'), 'utf8')).seed as string;
    expect(walk(out).some((f) => readFileSync(f, 'utf8').includes(seed))).toBe(false);
    // The bundle's member list is the re-signed version 2 that includes the newcomer.
    const authorityKey = encodePublicKey(loadIdentity(join(out, 'authority/federation-authority.key.json')).publicKey);
    expect([...loadMemberList(join(out, 'institutions/clinic-c/members.json'), authorityKey, 'onc').keys()]).toEqual(['clinic-c', 'hospital-a', 'hospital-b']);
    await expect(addClient(out, { name: 'clinic-d' }, { random: seededRandomBytes(1), request })).rejects.toThrow(/--request: name: expected "clinic-d", received "clinic-c"/);
  });

  it('the one-machine mode still generates every key, and says it is for local tests only', async () => {
    const m = await writeFederation(projectPlan(project), join(temp(), 'fed'), { random: seededRandomBytes('prov-gen') });
    expect(m.warnings.join('\n')).toMatch(/LOCAL\/TEST ONLY: the private keys of hospital-a, hospital-b were generated on this machine/);
  });
});
