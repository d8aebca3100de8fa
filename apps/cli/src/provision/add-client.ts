/**
 * `fedlora provision --add-client NAME --out DIR`: enrols one more institution in a federation
 * provisioned earlier. Issues its client certificate with the federation CA (pki/ca.key must be
 * present again for this), creates its identity and client config, and appends its public key to
 * coordinator.yaml (comments and layout kept), and re-signs members.json with the federation
 * authority's key (authority/federation-authority.key.json must be present too). The coordinator picks the enrolment up on its next
 * start; revocation, by contrast, is effective immediately through the store.
 */
import type { RandomBytes } from '@fedlora/tensor';
import { issueCertificate, issueFromRequest, verifyEnrolmentRequest, type PemPair } from '@fedlora/transport-grpc';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isSeq, parse, parseDocument } from 'yaml';
import type { InstitutionPlan } from './federation-plan.js';
import { FileWriter, refreshModes, writeInstitution, type ClientManifest, type WrittenFile } from './institution-files.js';
import { AUTHORITY_KEY_FILE, coordinatorKeyOf, readMembership, writeMembership } from './membership-files.js';
import { writeRequestedInstitution } from './requested-institution.js';

/** Options of `addClient`. */
export interface AddClientOptions {
  random: RandomBytes;
  now?: () => number;
  /** host:port the new client dials; default: the address existing client configs use. */
  coordinator?: string;
  /** The institution's enrolment request (parsed JSON from `fedlora client-init`): no key is generated here. */
  request?: unknown;
}

/** What `fedlora provision --add-client --json` prints. */
export interface AddClientManifest {
  federationId: string;
  outDir: string;
  client: ClientManifest;
  files: WrittenFile[];
  warnings: string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Adds `inst` to the federation in `outDir`. RangeError says what is missing or wrong. */
export async function addClient(outDir: string, inst: InstitutionPlan, options: AddClientOptions): Promise<AddClientManifest> {
  if (!NAME.test(inst.name)) throw new RangeError(`--add-client: expected 1..64 letters, digits, ".", "_" or "-", received "${inst.name}"`);
  const coordinatorPath = join(outDir, 'coordinator.yaml');
  if (!existsSync(coordinatorPath)) throw new RangeError(`--out: ${outDir} holds no federation (no coordinator.yaml); run fedlora provision first`);
  const doc = parseDocument(readFileSync(coordinatorPath, 'utf8'));
  if (doc.errors.length > 0) throw new RangeError(`${coordinatorPath}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const federationId = String(doc.get('federationId') ?? '');
  const insecure = doc.get('insecure') === true;
  let clients = doc.get('clients');
  if (clients === undefined) {
    doc.set('clients', doc.createNode([]));
    clients = doc.get('clients');
  }
  if (!isSeq(clients)) throw new RangeError(`${coordinatorPath}: clients: expected a list, received ${typeof clients}`);
  const names = clients.items.map((c) => (isMap(c) ? String(c.get('name')) : ''));
  if (names.includes(inst.name)) throw new RangeError(`--add-client: "${inst.name}" is already enrolled in ${coordinatorPath}`);
  if (existsSync(join(outDir, 'clients', `${inst.name}.yaml`))) throw new RangeError(`--add-client: clients/${inst.name}.yaml already exists; remove it first`);

  const dial = options.coordinator ?? existingDial(outDir);
  if (!dial) throw new RangeError('--coordinator: expected the host:port clients dial (no existing client config to copy it from)');

  let tls: { ca: PemPair; leaf?: PemPair } | undefined;
  if (readMembership(outDir) && !existsSync(join(outDir, AUTHORITY_KEY_FILE))) {
    throw new RangeError(`${join(outDir, AUTHORITY_KEY_FILE)}: the federation authority's key is needed to add a member to members.json; copy it back from offline storage`);
  }
  if (!insecure) {
    const caKey = join(outDir, 'pki/ca.key');
    if (!existsSync(caKey)) throw new RangeError(`${caKey}: the federation CA key is needed to enrol a client; copy it back from offline storage`);
    const ca = { certPem: readFileSync(join(outDir, 'pki/ca.crt'), 'utf8'), keyPem: readFileSync(caKey, 'utf8') };
    const leaf = options.request === undefined ? await issueCertificate(ca, { commonName: inst.name, kind: 'client', random: options.random, notBefore: (options.now ?? Date.now)() - 5 * 60_000 }) : undefined;
    tls = { ca, ...(leaf ? { leaf } : {}) };
  }
  const w = new FileWriter(outDir, options.now ?? Date.now);
  const membership = readMembership(outDir);
  let client: ClientManifest;
  if (options.request !== undefined) {
    // Production: the institution ran client-init; only its public material is used here.
    if (!membership) throw new RangeError(`--request: ${outDir} has no members.json (provisioned before signed member lists); provision the federation again`);
    const request = await verifyEnrolmentRequest(options.request, { name: inst.name, federationId }, '--request');
    const certPem = tls ? await issueFromRequest(tls.ca, request, { random: options.random, notBefore: (options.now ?? Date.now)() - 5 * 60_000 }) : undefined;
    client = writeRequestedInstitution(w, inst, request, { federationId, dial, insecure, certPem, caPem: tls?.ca.certPem, authorityKey: membership.authorityKey });
  } else {
    client = writeInstitution(w, inst, { federationId, dial, insecure, random: options.random, tls: tls?.leaf, ...(membership ? { authorityKey: membership.authorityKey } : {}) });
    w.warnings.push(`LOCAL/TEST ONLY: ${inst.name}'s private keys were generated on this machine; in production the institution runs fedlora client-init and you pass --request FILE`);
  }
  if (membership) {
    // A new version of the signed member list: every institution needs it before it accepts the new member in a secure cohort.
    const text = writeMembership(w, federationId, [...membership.members, { name: inst.name, publicKey: client.publicKey }], coordinatorKeyOf(outDir), membership.version + 1);
    if (options.request !== undefined) w.put(`institutions/${inst.name}/members.json`, text);
    w.warnings.push(`members.json is now version ${membership.version + 1}: give it to every institution (their clients decline secure rounds that include ${inst.name} until they have it)`);
  } else {
    w.warnings.push(`${outDir} has no members.json (provisioned before signed member lists): secure-aggregation rounds will be declined; provision the federation again`);
  }

  clients.add(doc.createNode({ name: inst.name, publicKey: client.publicKey }));
  const tmp = `${coordinatorPath}.tmp-${process.pid}`;
  writeFileSync(tmp, doc.toString(), { mode: statSync(coordinatorPath).mode & 0o777 });
  renameSync(tmp, coordinatorPath);
  w.files.push({ path: 'coordinator.yaml', mode: '644' });
  w.warnings.push(`restart the coordinator to admit ${inst.name} (enrolment is read from coordinator.yaml at start-up)`);
  refreshModes(w, statSync);
  return { federationId, outDir, client, files: w.files, warnings: w.warnings };
}

/** The `coordinator` address of the first existing client config (clients/NAME.yaml or institutions/NAME/client.yaml), if any. */
function existingDial(outDir: string): string | undefined {
  const configs: string[] = [];
  const clients = join(outDir, 'clients');
  if (existsSync(clients)) configs.push(...readdirSync(clients).filter((n) => n.endsWith('.yaml')).sort().map((f) => join(clients, f)));
  const bundles = join(outDir, 'institutions');
  if (existsSync(bundles)) configs.push(...readdirSync(bundles).sort().map((d) => join(bundles, d, 'client.yaml')).filter((f) => existsSync(f)));
  for (const f of configs) {
    const c = parse(readFileSync(f, 'utf8')) as { coordinator?: unknown } | null;
    if (typeof c?.coordinator === 'string') return c.coordinator;
  }
  return undefined;
}
