/**
 * Writes a provisioned federation directory:
 *
 *   DIR/coordinator.yaml              fedlora coordinator --config DIR/coordinator.yaml
 *   DIR/clients/<name>.yaml           fedlora client --config DIR/clients/<name>.yaml
 *   DIR/pki/ca.crt, ca.key            the federation CA (keep ca.key offline once done)
 *   DIR/pki/coordinator.crt, .key     TLS server certificate (SANs: loopback and given hosts)
 *   DIR/pki/clients/<name>.crt, .key  mTLS client certificates
 *   DIR/identities/<name>.key.json    Ed25519 request-signing identities (coordinator: ledger signing)
 *   DIR/authority/federation-authority.key.json  the federation authority (signs members.json; keep offline)
 *   DIR/members.json                  the signed member list every client checks secure rosters against
 *   DIR/trusted-keys.json             ledger writer -> key, for fedlora audit --trusted-keys
 *   DIR/data/coordinator/             the coordinator's data directory (SQLite store, checkpoints)
 *   DIR/data/<name>/                  each client's data directory (own ledger; sample text)
 *
 * Every private key is written 0600 (temp file, fsync, rename); key directories are 0700.
 * Config paths are relative to the config file, so the directory can be moved as a whole, and
 * for a multi-host federation each institution receives the files listed in its `ship` entry.
 */
import type { RandomBytes } from '@fedlora/tensor';
import { createCertificateAuthority, describeCertificate, encodePublicKey, generateIdentity, issueCertificate, issueFromRequest, saveIdentity, wipeIdentity, INSECURE_WARNING } from '@fedlora/transport-grpc';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostPort, type FederationPlan } from './federation-plan.js';
import { FileWriter, refreshModes, writeInstitution, type ClientManifest, type WrittenFile } from './institution-files.js';
import { AUTHORITY_KEY_FILE, createAuthority, writeMembership } from './membership-files.js';
import { writeRequestedInstitution } from './requested-institution.js';
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

export type { WrittenFile, ClientManifest };

/** What `fedlora provision --json` prints. */
export interface ProvisionManifest {
  federationId: string;
  outDir: string;
  insecure: boolean;
  coordinator: { config: string; listen: string; dial: string; publicKey: string; certificate?: ReturnType<typeof describeCertificate> };
  ca?: { cert: string; key: string; fingerprintSha256: string; notAfter: string };
  clients: ClientManifest[];
  files: WrittenFile[];
  warnings: string[];
}

/** Creates the federation described by `plan` in `outDir`. */
export async function writeFederation(plan: FederationPlan, outDir: string, options: WriteOptions): Promise<ProvisionManifest> {
  const now = options.now ?? Date.now;
  if (existsSync(join(outDir, 'coordinator.yaml')) && !options.force) {
    throw new RangeError(`--out: ${outDir} already holds a federation (coordinator.yaml exists); choose another directory or pass --force to replace its keys`);
  }
  const w = new FileWriter(outDir, now);
  const { files, warnings } = w;
  const put = (rel: string, text: string): void => w.put(rel, text);
  const putSecret = (rel: string, text: string): void => w.putSecret(rel, text);

  w.dir('.');
  for (const d of ['clients', 'data', 'data/coordinator']) w.dir(d);
  w.dir('identities', 0o700);
  if (!plan.insecure) {
    w.dir('pki', 0o700);
    w.dir('pki/clients', 0o700);
  }
  if (plan.insecure) warnings.push(`${INSECURE_WARNING} (provisioned with --insecure: no certificates were created)`);

  // PKI.
  const issue = { random: options.random, notBefore: now() - 5 * 60_000 };
  let certificate: ReturnType<typeof describeCertificate> | undefined;
  let ca: ProvisionManifest['ca'];
  const clientPem = new Map<string, { certPem: string; keyPem: string }>();
  const requestedCerts = new Map<string, string>();
  let caCertPem: string | undefined;
  if (!plan.insecure) {
    const caPem = await createCertificateAuthority(`${plan.federationId} federation CA`.slice(0, 64), issue);
    put('pki/ca.crt', caPem.certPem);
    putSecret('pki/ca.key', caPem.keyPem);
    const server = await issueCertificate(caPem, { ...issue, commonName: 'coordinator', kind: 'server', hosts: plan.serverNames });
    put('pki/coordinator.crt', server.certPem);
    putSecret('pki/coordinator.key', server.keyPem);
    for (const inst of plan.institutions) {
      const request = plan.requests?.get(inst.name);
      // From a request: a certificate for the key the institution generated and kept; otherwise (test only) a key made here.
      if (request) requestedCerts.set(inst.name, await issueFromRequest(caPem, request, issue));
      else clientPem.set(inst.name, await issueCertificate(caPem, { ...issue, commonName: inst.name, kind: 'client' }));
    }
    caCertPem = caPem.certPem;
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

  // The federation authority: signs the member list institutions check every secure roster against (not the coordinator's key).
  const authorityKey = createAuthority(w, options.random);
  warnings.push(`${AUTHORITY_KEY_FILE} decides who is a member of the federation: move it offline with pki/ca.key once provisioning is done.`);

  const dial = hostPort(plan.coordinatorHost, plan.port);
  const clients: ClientManifest[] = plan.institutions.map((inst, index) => {
    const request = plan.requests?.get(inst.name);
    if (request) {
      return writeRequestedInstitution(w, inst, request, { federationId: plan.federationId, dial, insecure: plan.insecure, certPem: requestedCerts.get(inst.name), caPem: caCertPem, authorityKey });
    }
    return writeInstitution(w, inst, {
      federationId: plan.federationId,
      dial,
      insecure: plan.insecure,
      random: options.random,
      tls: clientPem.get(inst.name),
      sampleText: plan.sampleData ? sampleShard(index, plan.institutions.length) : undefined,
      authorityKey,
    });
  });
  const enrolled = clients.map((c) => ({ name: c.name, publicKey: c.publicKey }));
  const membersText = writeMembership(w, plan.federationId, enrolled, coordinatorKey, 1);
  for (const name of plan.requests?.keys() ?? []) w.put(`institutions/${name}/members.json`, membersText);
  const generated = plan.institutions.filter((i) => !plan.requests?.has(i.name)).map((i) => i.name);
  if (generated.length > 0) {
    warnings.push(
      `LOCAL/TEST ONLY: the private keys of ${generated.join(', ')} were generated on this machine (identities/, pki/clients/), so whoever ran provision can act as them. ` +
        'For production each institution runs `fedlora client-init` and the operator provisions with --project FILE --requests DIR (see SECURITY.md).',
    );
  }

  const coordinatorDoc = {
    federationId: plan.federationId,
    listen: plan.listen,
    ...(plan.insecure ? { insecure: true } : { tls: { ca: 'pki/ca.crt', cert: 'pki/coordinator.crt', key: 'pki/coordinator.key', requireClientCert: true } }),
    dataDir: 'data/coordinator',
    identity: { secretKeyFile: 'identities/coordinator.key.json' },
    ...plan.coordinator,
    clients: enrolled,
  };
  w.putYaml('coordinator.yaml', coordinatorDoc, [`Coordinator of federation ${plan.federationId}; clients dial ${dial}.`, 'Run: fedlora coordinator --config coordinator.yaml'], plan.insecure);

  refreshModes(w, statSync);
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
