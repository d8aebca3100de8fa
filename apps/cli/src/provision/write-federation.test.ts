import { TRUSTED_KEYS_FILE, readTrustedKeys } from '@fedlora/privacy';
import { loadMemberList } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import { encodePublicKey, loadChannelCredentials, loadIdentity, loadServerCredentials } from '@fedlora/transport-grpc';
import { makeGenericClientConstructor, Metadata, Server, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { localPlan } from './federation-plan.js';
import { writeFederation } from './write-federation.js';

// The apps' config loaders, loaded by path: the configs provision writes must pass the same validation the apps apply.
const REPO = new URL('../../../../', import.meta.url);
type Loader = (path: string, env: Record<string, string>) => Record<string, unknown> & { tls?: { ca: string; cert?: string; key?: string }; clients?: Array<{ name: string; publicKey: string }>; identity: { secretKeyFile: string }; membership?: { file: string; authorityKey: string } };
const loaders = async (): Promise<{ coordinator: Loader; client: Loader }> => ({
  coordinator: (await import(pathToFileURL(new URL('apps/coordinator/src/config.ts', REPO).pathname).href)).loadCoordinatorConfig,
  client: (await import(pathToFileURL(new URL('apps/client/src/config.ts', REPO).pathname).href)).loadClientConfig,
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-prov-'));
  dirs.push(d);
  return join(d, 'fed');
}

describe('writeFederation (local federation)', () => {
  it('writes configs that the coordinator and client loaders accept as is, with matching identities', async () => {
    const out = tempDir();
    const m = await writeFederation(localPlan({ clients: 3, rounds: 2, federationId: 'fed-t', port: 7443 }), out, { random: seededRandomBytes('prov') });
    const { coordinator, client } = await loaders();
    const c = coordinator(join(out, 'coordinator.yaml'), {});
    expect(c).toMatchObject({ federationId: 'fed-t', listen: '127.0.0.1:7443', rounds: { total: 2, minClients: 2 } });
    expect(c.clients!.map((x) => x.name)).toEqual(['inst-1', 'inst-2', 'inst-3']);
    for (const enrolled of c.clients!) {
      const cl = client(join(out, 'clients', `${enrolled.name}.yaml`), {});
      expect(cl).toMatchObject({ name: enrolled.name, federationId: 'fed-t', coordinator: '127.0.0.1:7443' });
      expect(encodePublicKey(loadIdentity(cl.identity.secretKeyFile).publicKey)).toBe(enrolled.publicKey);
      expect(readFileSync((cl.data as { path: string }).path, 'utf8').length).toBeGreaterThan(10_000);
    }
    expect(encodePublicKey(loadIdentity(c.identity.secretKeyFile).publicKey)).toBe(m.coordinator.publicKey);
  });

  it("writes the auditor's trusted keys: the public key of every ledger writer, readable by anyone", async () => {
    const out = tempDir();
    const m = await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-t', port: 7443 }), out, { random: seededRandomBytes('trust') });
    expect(readTrustedKeys(join(out, TRUSTED_KEYS_FILE))).toEqual({ coordinator: m.coordinator.publicKey, ...Object.fromEntries(m.clients.map((c) => [c.name, c.publicKey])) });
    expect(statSync(join(out, TRUSTED_KEYS_FILE)).mode & 0o777).toBe(0o644);
  });

  it('writes every private key 0600 inside 0700 directories', async () => {
    const out = tempDir();
    const m = await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-t', port: 7443 }), out, { random: seededRandomBytes('perm') });
    const secrets = m.files.filter((f) => f.path.endsWith('.key') || f.path.endsWith('.key.json'));
    expect(secrets.map((f) => f.path).sort()).toEqual(
      ['authority/federation-authority.key.json', 'identities/coordinator.key.json', 'identities/inst-1.key.json', 'identities/inst-2.key.json', 'pki/ca.key', 'pki/clients/inst-1.key', 'pki/clients/inst-2.key', 'pki/coordinator.key'],
    );
    for (const f of secrets) expect(statSync(join(out, f.path)).mode & 0o777).toBe(0o600);
    for (const d of ['authority', 'identities', 'pki', 'pki/clients']) expect(statSync(join(out, d)).mode & 0o777).toBe(0o700);
  });

  it('writes members.json signed by the federation authority (not the coordinator), pinned in every client config, and the auditor\'s trusted keys', async () => {
    const out = tempDir();
    const m = await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-t', port: 7443 }), out, { random: seededRandomBytes('members') });
    const { client } = await loaders();
    const authority = encodePublicKey(loadIdentity(join(out, 'authority/federation-authority.key.json')).publicKey);
    expect(authority).not.toBe(m.coordinator.publicKey);
    for (const enrolled of m.clients) {
      const cl = client(join(out, 'clients', `${enrolled.name}.yaml`), {});
      expect(cl.membership).toEqual({ file: join(out, 'members.json'), authorityKey: authority });
      const members = loadMemberList(cl.membership!.file, cl.membership!.authorityKey, 'fed-t');
      expect([...members.keys()]).toEqual(['inst-1', 'inst-2']);
      expect(encodePublicKey(members.get(enrolled.name)!)).toBe(enrolled.publicKey);
      expect(enrolled.ship).toContain('members.json');
    }
    expect(JSON.parse(readFileSync(join(out, 'trusted-keys.json'), 'utf8'))).toEqual({ coordinator: m.coordinator.publicKey, 'inst-1': m.clients[0]!.publicKey, 'inst-2': m.clients[1]!.publicKey });
  });

  it('issues a server certificate for loopback and extra hosts, and client certificates, all under the CA', async () => {
    const out = tempDir();
    await writeFederation(localPlan({ clients: 1, rounds: 1, federationId: 'fed-t', port: 7443, hosts: ['coord.lan'] }), out, { random: seededRandomBytes('chain') });
    const ca = new X509Certificate(readFileSync(join(out, 'pki/ca.crt')));
    const server = new X509Certificate(readFileSync(join(out, 'pki/coordinator.crt')));
    const inst = new X509Certificate(readFileSync(join(out, 'pki/clients/inst-1.crt')));
    expect(server.verify(ca.publicKey) && inst.verify(ca.publicKey)).toBe(true);
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkHost('coord.lan')).toBe('coord.lan');
    expect(inst.subject).toBe('CN=inst-1');
  });

  it('the provisioned files complete an mTLS handshake between grpc-js peers on 127.0.0.1', async () => {
    const out = tempDir();
    await writeFederation(localPlan({ clients: 1, rounds: 1, federationId: 'fed-t', port: 7443 }), out, { random: seededRandomBytes('hs') });
    const { coordinator, client } = await loaders();
    const cc = coordinator(join(out, 'coordinator.yaml'), {});
    const cl = client(join(out, 'clients/inst-1.yaml'), {});
    const service: ServiceDefinition = {
      Ping: { path: '/t.T/Ping', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
    };
    const server = new Server();
    server.addService(service, { Ping: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, Buffer.from('pong')) });
    const tls = cc.tls as { ca: string; cert: string; key: string; requireClientCert: boolean };
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', loadServerCredentials(tls), (e, p) => (e ? rej(e) : res(p))));
    try {
      const Client = makeGenericClientConstructor(service, 'T');
      const c = new Client(`127.0.0.1:${port}`, loadChannelCredentials(cl.tls!));
      const reply = await new Promise<Buffer>((res, rej) =>
        c.makeUnaryRequest('/t.T/Ping', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('ping'), new Metadata(), { deadline: Date.now() + 10_000 }, (e: ServiceError | null, r?: Buffer) => (e ? rej(e) : res(r!))),
      );
      c.close();
      expect(reply.toString()).toBe('pong');
    } finally {
      server.forceShutdown();
    }
  });

  it('refuses to overwrite an existing federation unless forced', async () => {
    const out = tempDir();
    const plan = localPlan({ clients: 1, rounds: 1, federationId: 'fed-t', port: 7443 });
    await writeFederation(plan, out, { random: seededRandomBytes(1) });
    await expect(writeFederation(plan, out, { random: seededRandomBytes(2) })).rejects.toThrow(/already holds a federation .* --force/);
    await expect(writeFederation(plan, out, { random: seededRandomBytes(3), force: true })).resolves.toBeDefined();
  });

  it('with --insecure writes no PKI, marks every config insecure and warns', async () => {
    const out = tempDir();
    const m = await writeFederation(localPlan({ clients: 2, rounds: 1, federationId: 'fed-t', port: 7443, insecure: true, sampleData: false }), out, { random: seededRandomBytes(4) });
    expect(existsSync(join(out, 'pki'))).toBe(false);
    expect(m.warnings.join('\n')).toMatch(/INSECURE: TLS is disabled/);
    expect(m.warnings.join('\n')).toMatch(/inst-1: put the institution's training text at data\/inst-1\/train.txt/);
    const { coordinator, client } = await loaders();
    expect(coordinator(join(out, 'coordinator.yaml'), {}).insecure).toBe(true);
    expect(client(join(out, 'clients/inst-2.yaml'), {}).insecure).toBe(true);
    expect(readFileSync(join(out, 'coordinator.yaml'), 'utf8')).toMatch(/^# INSECURE: TLS is disabled/m);
  });
});
