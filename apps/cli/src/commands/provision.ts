/**
 * `fedlora provision`: creates a federation directory with a CA, the coordinator's TLS
 * certificate, per-institution Ed25519 identities and client certificates, and ready-to-run
 * configs. `--clients N --rounds R --out DIR` makes a local federation on 127.0.0.1 (test only:
 * every private key is generated here); `--project FILE --requests DIR` a real one across hosts from
 * the institutions' enrolment requests (`fedlora client-init`), writing no institution private key.
 */
import { cryptoRandomBytes } from '@fedlora/tensor';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, info, printJson } from '../output.js';
import { localPlan, type FederationPlan } from '../provision/federation-plan.js';
import { loadProjectFile, projectPlan } from '../provision/project-file.js';
import { addClient } from '../provision/add-client.js';
import { revokeClient } from '../provision/revoke-client.js';
import { loadRequests } from '../provision/requested-institution.js';
import { writeFederation } from '../provision/write-federation.js';
import { intOption } from './parse-options.js';

interface ProvisionFlags {
  out: string;
  addClient?: string;
  request?: string;
  coordinator?: string;
  dataPath?: string;
  revoke?: string;
  reason?: string;
  clients: number;
  rounds: number;
  minClients?: number;
  project?: string;
  requests?: string;
  federationId?: string;
  port: number;
  host: string[];
  insecure?: boolean;
  sampleData: boolean;
  force?: boolean;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  if (!/^(\[?[0-9a-fA-F:.]+\]?|[A-Za-z0-9.-]+)$/.test(value)) throw new InvalidArgumentError(`--host expects a host name or IP address, received "${value}"`);
  return [...previous, value];
}

/** The project-file example `provision --help` prints (a test checks that it provisions). */
export const PROJECT_FILE_EXAMPLE = `federationId: oncology-2026
coordinator:
  host: fl.hospital-a.example.org   # the name clients dial; goes into the server certificate
  port: 7443                        # optional: listen (default 0.0.0.0:<port>), altNames: [10.0.0.5]
institutions:
  - name: hospital-a
    dataPath: /srv/notes/train.jsonl  # path on that institution's host
    jsonField: text
    budget: { epsilon: 8, delta: 1.0e-5 }
  - name: hospital-b                # data.path to be set in clients/hospital-b.yaml
rounds: { total: 20, minClients: 2 }
privacy: { mode: central, clipNorm: 1, noiseMultiplier: 1.1, delta: 1.0e-5 }
# optional, copied into coordinator.yaml: strategy, secagg, model, metrics; insecure: true (development only)
`;

/** Adds `provision` to the program. */
export function register(program: Command): void {
  program
    .command('provision')
    .description('Create a federation: CA, TLS certificates, Ed25519 identities and ready-to-run configs')
    .requiredOption('--out <dir>', 'directory to create the federation in')
    .option('--clients <n>', 'number of institutions of a local federation', intOption('--clients', 1, 1000), 2)
    .option('--rounds <n>', 'rounds to run', intOption('--rounds', 1, 1_000_000), 3)
    .option('--min-clients <n>', 'clients a round needs (default: min(2, clients))', intOption('--min-clients', 1, 1000))
    .option('--add-client <name>', 'enrol one more institution in the federation already in --out (needs pki/ca.key)')
    .option('--coordinator <host:port>', 'with --add-client: address the new client dials (default: as the existing clients)')
    .option('--request <file>', "with --add-client: the institution's enrolment request (NAME.request.json from fedlora client-init); no key is generated here")
    .option('--data-path <path>', 'with --add-client: the institution\'s training data (relative to its client config)')
    .option('--revoke <name>', 'withdraw an institution: revoked in the coordinator store at once (also while it runs), removed from coordinator.yaml')
    .option('--reason <text>', 'with --revoke: why (kept in the audit log)')
    .option('--project <file>', 'YAML project file describing a federation across hosts (overrides --clients/--rounds)')
    .option('--requests <dir>', "with --project: the institutions' enrolment requests (NAME.request.json from fedlora client-init); their private keys are never generated here")
    .option('--federation-id <id>', 'federation id (default: fed-<random>)')
    .option('--port <port>', 'coordinator port', intOption('--port', 1, 65535), 7443)
    .option('--host <name>', 'extra name or IP for the coordinator certificate (repeatable)', collect, [] as string[])
    .option('--insecure', 'no TLS: local development ONLY (anyone on the network can read and forge traffic)')
    .option('--no-sample-data', 'do not write public-domain sample text for each local institution')
    .option('--force', 'replace an existing federation in --out (its keys are lost)')
    .option('--json', 'print what was written as one JSON document')
    .addHelpText(
      'after',
      '\nExamples:\n  fedlora provision --clients 3 --rounds 5 --out ./fed              (local/test: generates every key)\n  fedlora provision --project federation.yaml --requests ./requests --out ./fed   (production: institutions ran fedlora client-init)\n  fedlora provision --add-client inst-4 --out ./fed\n  fedlora provision --revoke inst-2 --reason "key leaked" --out ./fed' +
        `\n\nA project file (--project) describes a federation across hosts, e.g.:\n${PROJECT_FILE_EXAMPLE.replace(/^/gm, '  ').trimEnd()}`,
    )
    .action(async (flags: ProvisionFlags) => {
      if (flags.addClient !== undefined) return addOne(flags);
      if (flags.revoke !== undefined) return revokeOne(flags);
      let plan: FederationPlan;
      try {
        if (flags.project) {
          plan = projectPlan(loadProjectFile(flags.project));
          if (flags.insecure) plan.insecure = true;
          if (flags.requests) plan.requests = await loadRequests(resolve(flags.requests), plan.institutions.map((i) => i.name), plan.federationId);
        } else {
          if (flags.requests) throw new RangeError('--requests: expected --project FILE too (the project file names the institutions and the coordinator host)');
          const federationId = flags.federationId ?? `fed-${Buffer.from(cryptoRandomBytes(4)).toString('hex')}`;
          if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(federationId)) {
            throw new RangeError(`--federation-id: expected 1..64 letters, digits, ".", "_" or "-", received "${federationId}"`);
          }
          plan = localPlan({
            clients: flags.clients,
            rounds: flags.rounds,
            federationId,
            port: flags.port,
            hosts: flags.host,
            minClients: flags.minClients,
            insecure: flags.insecure,
            sampleData: flags.sampleData,
          });
        }
      } catch (err) {
        throw new CliError(err instanceof Error ? err.message : String(err), 2);
      }
      const outDir = resolve(flags.out);
      let manifest;
      try {
        manifest = await writeFederation(plan, outDir, { random: cryptoRandomBytes, force: flags.force });
      } catch (err) {
        if (err instanceof RangeError) throw new CliError(err.message, 2);
        const e = err as NodeJS.ErrnoException;
        if (e.code) throw new CliError(`cannot write the federation to ${outDir}: ${e.code} (${e.message})`, 1);
        throw err;
      }
      for (const w of manifest.warnings) info(`warning: ${w}`);
      if (flags.json) return printJson(manifest);
      const fromRequests = plan.requests !== undefined && plan.requests.size === plan.institutions.length;
      const lines = [
        `Federation ${manifest.federationId} written to ${outDir}${fromRequests ? ' from enrolment requests (no institution private key was written)' : ' (LOCAL/TEST ONLY: every institution\'s private key was generated here)'}`,
        `  coordinator: fedlora coordinator --config ${resolve(outDir, manifest.coordinator.config)}   (listens on ${manifest.coordinator.listen})`,
        ...manifest.clients.map((c) =>
          c.requestFingerprint
            ? `  ${c.name}: send ${c.ship.join(', ')} (request fingerprint ${c.requestFingerprint}: compare with the institution's)`
            : `  ${c.name}: fedlora client --config ${resolve(outDir, c.config)}`,
        ),
        manifest.ca ? `  CA fingerprint (SHA-256): ${manifest.ca.fingerprintSha256}` : '  TLS: DISABLED (--insecure)',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

async function addOne(flags: ProvisionFlags): Promise<void> {
  const outDir = resolve(flags.out);
  let manifest;
  try {
    const request = flags.request ? readJson(flags.request) : undefined;
    manifest = await addClient(outDir, { name: flags.addClient!, ...(flags.dataPath ? { dataPath: flags.dataPath } : {}) }, { random: cryptoRandomBytes, coordinator: flags.coordinator, ...(request !== undefined ? { request } : {}) });
  } catch (err) {
    if (err instanceof RangeError) throw new CliError(err.message, 2);
    throw err;
  }
  for (const w of manifest.warnings) info(`warning: ${w}`);
  if (flags.json) return printJson(manifest);
  const c = manifest.client;
  process.stdout.write(
    c.requestFingerprint
      ? `Enrolled ${c.name} in ${manifest.federationId} from its request (fingerprint ${c.requestFingerprint}): send it ${c.ship.join(', ')}\n`
      : `Enrolled ${c.name} in ${manifest.federationId} (LOCAL/TEST ONLY: its keys were generated here): fedlora client --config ${resolve(outDir, c.config)}\n`,
  );
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (err) {
    throw new RangeError(`--request ${path}: cannot read it as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function revokeOne(flags: ProvisionFlags): void {
  let manifest;
  try {
    manifest = revokeClient(resolve(flags.out), flags.revoke!, { reason: flags.reason });
  } catch (err) {
    if (err instanceof RangeError) throw new CliError(err.message, 2);
    if (err instanceof Error && err.name === 'StoreError') throw new CliError(err.message, 1);
    throw err;
  }
  if (flags.json) return printJson(manifest);
  process.stdout.write(
    `Revoked ${manifest.name} in ${manifest.federationId} (store ${manifest.store}); the coordinator refuses its new registrations from now on.\n` +
      (manifest.membersReissued
        ? 'members.json was re-signed without it: give the new version to every institution.\n'
        : 'members.json was NOT re-signed (no authority key in authority/, or no member list): re-sign it where the federation authority key is kept.\n'),
  );
}
