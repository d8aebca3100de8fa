/**
 * The production flow of `fedlora provision --project FILE --requests DIR` (issue 16, finding 1):
 * each institution ran `fedlora client-init` and sent NAME.request.json; provisioning verifies the
 * requests, issues certificates for the institutions' own TLS keys and writes, per institution, a
 * bundle of public files to copy into the directory where it ran client-init:
 *
 *   institutions/NAME/client.yaml    its config (points at identity.key.json and tls.key, which it already holds)
 *   institutions/NAME/client.crt     its TLS client certificate
 *   institutions/NAME/ca.crt         the federation CA
 *   institutions/NAME/members.json   the member list signed by the federation authority
 *
 * No institution private key is read or written here.
 */
import { verifyEnrolmentRequest, enrolmentFingerprint, type EnrolmentRequest } from '@fedlora/transport-grpc';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INSTITUTION_FILES } from './client-init.js';
import { loopbackServerName, type InstitutionPlan } from './federation-plan.js';
import type { ClientManifest, FileWriter } from './institution-files.js';

/** Reads and verifies DIR/NAME.request.json for every institution; RangeError lists every problem. */
export async function loadRequests(dir: string, names: string[], federationId: string): Promise<Map<string, EnrolmentRequest>> {
  const out = new Map<string, EnrolmentRequest>();
  const problems: string[] = [];
  for (const name of names) {
    const path = join(dir, `${name}.request.json`);
    if (!existsSync(path)) {
      problems.push(`${path}: missing (the institution creates it with: fedlora client-init --name ${name} --federation-id ${federationId} --out DIR)`);
      continue;
    }
    try {
      out.set(name, await verifyEnrolmentRequest(JSON.parse(readFileSync(path, 'utf8')) as unknown, { name, federationId }, path));
    } catch (err) {
      problems.push(err instanceof SyntaxError ? `${path}: not JSON (${err.message})` : (err as Error).message);
    }
  }
  if (problems.length > 0) throw new RangeError(`--requests: ${problems.join('\n')}`);
  return out;
}

/** What the bundle of a requested institution needs. */
export interface RequestedContext {
  federationId: string;
  dial: string;
  insecure: boolean;
  /** Its certificate, issued from its request (absent when insecure). */
  certPem?: string;
  caPem?: string;
  authorityKey: string;
}

/** Writes a requested institution's bundle (public files only); returns its manifest entry. */
export function writeRequestedInstitution(w: FileWriter, inst: InstitutionPlan, request: EnrolmentRequest, ctx: RequestedContext): ClientManifest & { requestFingerprint: string } {
  const base = `institutions/${inst.name}`;
  w.dir(base);
  const ship = [`${base}/client.yaml`, `${base}/members.json`];
  if (ctx.certPem && ctx.caPem) {
    w.put(`${base}/client.crt`, ctx.certPem);
    w.put(`${base}/ca.crt`, ctx.caPem);
    ship.push(`${base}/client.crt`, `${base}/ca.crt`);
  }
  const dataPath = inst.dataPath ?? 'data/train.txt';
  if (!inst.dataPath) w.warnings.push(`${inst.name}: set data.path in its client.yaml (default data/train.txt next to it)`);
  const serverName = loopbackServerName(ctx.dial);
  const doc = {
    name: inst.name,
    federationId: ctx.federationId,
    coordinator: ctx.dial,
    ...(ctx.certPem ? { tls: { ca: 'ca.crt', cert: 'client.crt', key: INSTITUTION_FILES.tlsKey, ...(serverName ? { serverName } : {}) } } : { insecure: true }),
    identity: { secretKeyFile: INSTITUTION_FILES.identity },
    dataDir: 'data',
    data: { path: dataPath, ...(inst.jsonField ? { format: 'jsonl', jsonField: inst.jsonField } : {}) },
    ...(inst.budget ? { privacy: inst.budget } : {}),
    membership: { file: 'members.json', authorityKey: ctx.authorityKey },
  };
  w.putYaml(`${base}/client.yaml`, doc, [`Client node "${inst.name}" of federation ${ctx.federationId}: copy this directory's files next to identity.key.json and tls.key (made by fedlora client-init).`, 'Run: fedlora client --config client.yaml'], ctx.insecure);
  return { name: inst.name, config: `${base}/client.yaml`, publicKey: request.publicKey, dataPath, sampleData: false, ship, requestFingerprint: enrolmentFingerprint(request) };
}
