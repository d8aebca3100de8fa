/**
 * Writes a provisioned federation directory:
 *
 *   DIR/coordinator.yaml              fedlora coordinator --config DIR/coordinator.yaml
 *   DIR/clients/<name>.yaml           fedlora client --config DIR/clients/<name>.yaml
 *   DIR/pki/ca.crt, ca.key            the federation CA (keep ca.key offline once done)
 *   DIR/pki/coordinator.crt, .key     TLS server certificate (SANs: loopback and given hosts)
 *   DIR/pki/clients/<name>.crt, .key  mTLS client certificates
 *   DIR/identities/<name>.key.json    Ed25519 request-signing identities (coordinator: ledger signing)
 *   DIR/data/coordinator/             the coordinator's data directory (SQLite store, checkpoints)
 *   DIR/data/<name>/                  each client's data directory (own ledger; sample text)
 *
 * Every private key is written 0600 (temp file, fsync, rename); key directories are 0700.
 * Config paths are relative to the config file, so the directory can be moved as a whole, and
 * for a multi-host federation each institution receives the files listed in its `ship` entry.
 */
import type { RandomBytes } from '@fedlora/tensor';
import {
  createCertificateAuthority,
  describeCertificate,
  encodePublicKey,
  generateIdentity,
  issueCertificate,
  saveIdentity,
  wipeIdentity,
  writePrivateFile,
  INSECURE_WARNING,
} from '@fedlora/transport-grpc';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { hostPort, type FederationPlan } from './federation-plan.js';
import { sampleShard } from './sample-data.js';

/** Options of `writeFederation`. */
export interface WriteOptions {
  /** Source of identity seeds and certificate serials (cryptoRandomBytes in production). */
  random: RandomBytes;
  /** Clock for certificate validity and the generated-at stamp (default Date.now). */
  now?: () => number;
  /** Replace an existing federation in `outDir` (its keys are lost). */
  force?: boolean;
}

/** A written file, relative to the output directory, with its permission bits. */
export interface WrittenFile {
  path: string;
  mode: string;
}

/** What `fedlora provision --json` prints. */
export interface ProvisionManifest {
  federationId: string;
  outDir: string;
  insecure: boolean;
  coordinator: { config: string; listen: string; dial: string; publicKey: string; certificate?: ReturnType<typeof describeCertificate> };
  ca?: { cert: string; key: string; fingerprintSha256: string; notAfter: string };
  clients: Array<{ name: string; config: string; publicKey: string; dataPath: string; sampleData: boolean; ship: string[] }>;
  files: WrittenFile[];
  warnings: string[];
}

/** Creates the federation described by `plan` in `outDir`. */
export async function writeFederation(plan: FederationPlan, outDir: string, options: WriteOptions): Promise<ProvisionManifest> {
  const now = options.now ?? Date.now;
  if (existsSync(join(outDir, 'coordinator.yaml')) && !options.force) {
    throw new RangeError(`--out: ${outDir} already holds a federation (coordinator.yaml exists); choose another directory or pass --force to replace its keys`);
  }
  const files: WrittenFile[] = [];
  const warnings: string[] = [];
  const dir = (rel: string, mode = 0o755): void => {
    mkdirSync(join(outDir, rel), { recursive: true, mode });
    chmodSync(join(outDir, rel), mode);
  };
  const put = (rel: string, text: string): void => {
    writeFileSync(join(outDir, rel), text, { mode: 0o644 });
    files.push({ path: rel, mode: '644' });
  };
  const putSecret = (rel: string, text: string): void => {
    writePrivateFile(join(outDir, rel), text);
    files.push({ path: rel, mode: '600' });
  };

  dir('.');
  for (const d of ['clients', 'data', 'data/coordinator']) dir(d);
  dir('identities', 0o700);
  if (!plan.insecure) {
    dir('pki', 0o700);
    dir('pki/clients', 0o700);
  }
  if (plan.insecure) warnings.push(`${INSECURE_WARNING} (provisioned with --insecure: no certificates were created)`);

  // PKI.
  const issue = { random: options.random, notBefore: now() - 5 * 60_000 };
  let certificate: ReturnType<typeof describeCertificate> | undefined;
  let ca: ProvisionManifest['ca'];
  const clientPem = new Map<string, { certPem: string; keyPem: string }>();
  if (!plan.insecure) {
    const caPem = await createCertificateAuthority(`${plan.federationId} federation CA`.slice(0, 64), issue);
    put('pki/ca.crt', caPem.certPem);
    putSecret('pki/ca.key', caPem.keyPem);
    const server = await issueCertificate(caPem, { ...issue, commonName: 'coordinator', kind: 'server', hosts: plan.serverNames });
    put('pki/coordinator.crt', server.certPem);
    putSecret('pki/coordinator.key', server.keyPem);
    for (const inst of plan.institutions) clientPem.set(inst.name, await issueCertificate(caPem, { ...issue, commonName: inst.name, kind: 'client' }));
    certificate = describeCertificate(server.certPem);
    const caInfo = describeCertificate(caPem.certPem);
    ca = { cert: 'pki/ca.crt', key: 'pki/ca.key', fingerprintSha256: caInfo.fingerprintSha256, notAfter: caInfo.notAfter };
    warnings.push('pki/ca.key can enrol new members of the federation: move it offline once provisioning is done.');
  }

  // Identities.
  const coordinatorId = generateIdentity('coordinator', options.random);
  saveIdentity(join(outDir, 'identities/coordinator.key.json'), coordinatorId);
  files.push({ path: 'identities/coordinator.key.json', mode: '600' });
  const coordinatorKey = encodePublicKey(coordinatorId.publicKey);
  wipeIdentity(coordinatorId);

  const dial = hostPort(plan.coordinatorHost, plan.port);
  const clients: ProvisionManifest['clients'] = [];
  const enrolled: Array<{ name: string; publicKey: string }> = [];
  plan.institutions.forEach((inst, index) => {
    const id = generateIdentity(inst.name, options.random);
    const idFile = `identities/${inst.name}.key.json`;
    saveIdentity(join(outDir, idFile), id);
    files.push({ path: idFile, mode: '600' });
    const publicKey = encodePublicKey(id.publicKey);
    wipeIdentity(id);
    enrolled.push({ name: inst.name, publicKey });

    dir(`data/${inst.name}`);
    let dataPath = inst.dataPath;
    let sample = false;
    if (!dataPath) {
      dataPath = `../data/${inst.name}/train.txt`;
      if (plan.sampleData) {
        put(`data/${inst.name}/train.txt`, sampleShard(index, plan.institutions.length));
        sample = true;
      } else {
        warnings.push(`${inst.name}: put the institution's training text at data/${inst.name}/train.txt or set data.path in clients/${inst.name}.yaml`);
      }
    }
    const ship = [`clients/${inst.name}.yaml`, idFile];
    const tls = clientPem.get(inst.name);
    if (tls) {
      put(`pki/clients/${inst.name}.crt`, tls.certPem);
      putSecret(`pki/clients/${inst.name}.key`, tls.keyPem);
      ship.push('pki/ca.crt', `pki/clients/${inst.name}.crt`, `pki/clients/${inst.name}.key`);
    }
    const doc = {
      name: inst.name,
      federationId: plan.federationId,
      coordinator: dial,
      ...(tls ? { tls: { ca: '../pki/ca.crt', cert: `../pki/clients/${inst.name}.crt`, key: `../pki/clients/${inst.name}.key` } } : { insecure: true }),
      identity: { secretKeyFile: `../${idFile}` },
      dataDir: `../data/${inst.name}`,
      data: { path: dataPath, ...(inst.jsonField ? { format: 'jsonl', jsonField: inst.jsonField } : {}) },
      ...(inst.budget ? { privacy: inst.budget } : {}),
    };
    const config = `clients/${inst.name}.yaml`;
    put(config, yamlFile(doc, [`Client node "${inst.name}" of federation ${plan.federationId}.`, `Run: fedlora client --config ${config}`], plan.insecure, now));
    clients.push({ name: inst.name, config, publicKey, dataPath, sampleData: sample, ship });
  });

  const coordinatorDoc = {
    federationId: plan.federationId,
    listen: plan.listen,
    ...(plan.insecure ? { insecure: true } : { tls: { ca: 'pki/ca.crt', cert: 'pki/coordinator.crt', key: 'pki/coordinator.key', requireClientCert: true } }),
    dataDir: 'data/coordinator',
    identity: { secretKeyFile: 'identities/coordinator.key.json' },
    ...plan.coordinator,
    clients: enrolled,
  };
  put('coordinator.yaml', yamlFile(coordinatorDoc, [`Coordinator of federation ${plan.federationId}; clients dial ${dial}.`, 'Run: fedlora coordinator --config coordinator.yaml'], plan.insecure, now));

  for (const f of files) f.mode = (statSync(join(outDir, f.path)).mode & 0o777).toString(8);
  return {
    federationId: plan.federationId,
    outDir,
    insecure: plan.insecure,
    coordinator: { config: 'coordinator.yaml', listen: plan.listen, dial, publicKey: coordinatorKey, ...(certificate ? { certificate } : {}) },
    ...(ca ? { ca } : {}),
    clients,
    files,
    warnings,
  };
}

function yamlFile(doc: unknown, header: string[], insecure: boolean, now: () => number): string {
  const lines = [...header, `Generated by fedlora provision at ${new Date(now()).toISOString()}. Override any key with FEDLORA_<SECTION>_<KEY>.`];
  if (insecure) lines.push('INSECURE: TLS is disabled in this federation. For local development only.');
  return `${lines.map((l) => `# ${l}`).join('\n')}\n${stringify(doc)}`;
}
