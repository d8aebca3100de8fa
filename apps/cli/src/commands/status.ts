import type { Command } from 'commander';
import { GrpcConnection, insecureChannelCredentials, loadChannelCredentials } from '@fedlora/transport-grpc';
import { CliError, formatTable, info, printJson } from '../output.js';
import { loopbackServerName } from '../provision/federation-plan.js';
import { intOption } from './parse-options.js';

interface StatusFlags {
  coordinator: string;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
  insecure?: boolean;
  timeout: number;
  json?: boolean;
}

/** One round attempt as the coordinator reports it (RoundSummary; unknown fields are passed through to --json). */
interface RoundRow {
  round: number;
  attempt: number;
  status: string;
  participants: number;
  cohort: number;
  trainLoss: number | null;
  startedAt: number;
  endedAt: number;
  reason?: string;
  /** Federated evaluation of the global adapter the round started from (institutions' held-out sets). */
  evaluation?: { clients: number; count: number; acc?: number; loss?: number; generalLoss?: number };
}

/** What `fedlora status --json` prints: the coordinator's operator view plus the address asked. */
export interface StatusReport {
  coordinator: string;
  federationId: string;
  state: string;
  currentRound: number;
  totalRounds: number;
  connectedClients: number;
  rounds: RoundRow[];
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** Checks the flag combination; returns the channel credentials it asks for. */
function credentialsFor(f: StatusFlags) {
  if (!HOST_PORT.test(f.coordinator)) throw new CliError(`--coordinator expects host:port (e.g. 127.0.0.1:7443), received "${f.coordinator}"`);
  if (f.insecure) {
    if (f.ca || f.cert || f.key) throw new CliError('--insecure cannot be combined with --ca/--cert/--key');
    return insecureChannelCredentials((message) => info(`warning: ${message}`));
  }
  if (!f.ca) throw new CliError('--ca is required (the federation CA certificate), or --insecure for a plaintext development coordinator');
  if (Boolean(f.cert) !== Boolean(f.key)) throw new CliError('--cert and --key go together (the client certificate and its key, for mTLS)');
  try {
    return loadChannelCredentials({ ca: f.ca, cert: f.cert, key: f.key });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** Asks the coordinator for its operator view (the GetStatus RPC: no signed identity needed; unsigned, it names no institutions). */
export async function fetchStatus(f: StatusFlags): Promise<StatusReport> {
  const serverName = f.serverName ?? (f.ca ? loopbackServerName(f.coordinator) : undefined);
  const conn = new GrpcConnection({ address: f.coordinator, credentials: credentialsFor(f), serverName, callTimeoutMs: f.timeout });
  try {
    const s = (await conn.status()) as Omit<StatusReport, 'coordinator'>;
    return { coordinator: f.coordinator, federationId: s.federationId, state: s.state, currentRound: s.currentRound, totalRounds: s.totalRounds, connectedClients: s.connectedClients, rounds: s.rounds ?? [] };
  } catch (err) {
    const detail = (err as Error).message.replace(/\s*Resolution note:\s*$/, '');
    throw new CliError(`cannot get the status of the coordinator at ${f.coordinator}: ${detail}${statusHint(detail)}`);
  } finally {
    conn.close();
  }
}

/** What to check for the usual reasons a status call fails (empty when the error says it all). */
export function statusHint(detail: string): string {
  if (/certificate required/i.test(detail)) {
    return '; the coordinator requires mutual TLS: add --cert and --key (a certificate the federation CA signed, e.g. pki/clients/NAME.crt and .key)';
  }
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Deadline exceeded/i.test(detail)) {
    return "; is a coordinator running there? Check the address against its config's `listen` (a coordinator started with --exit-when-done exits after its last round, and a failed run exits too)";
  }
  return '';
}

/** Human-readable form of a status report. */
export function formatStatus(r: StatusReport): string {
  const head = [
    `federation ${r.federationId} at ${r.coordinator}: ${r.state}`,
    `round ${r.currentRound} of ${r.totalRounds}, ${r.connectedClients} client(s) connected`,
  ].join('\n');
  if (r.rounds.length === 0) return `${head}\nno round attempts yet\n`;
  const rows = r.rounds.map((x) => [
    x.round,
    x.attempt,
    x.status,
    x.participants,
    x.cohort,
    x.trainLoss ?? '-',
    x.evaluation?.acc ?? '-',
    x.evaluation?.loss ?? '-',
    ((x.endedAt - x.startedAt) / 1000).toFixed(1),
    x.reason ?? '',
  ]);
  return `${head}\n\n${formatTable(['round', 'attempt', 'status', 'participants', 'cohort', 'trainLoss', 'evalAcc', 'evalLoss', 'seconds', 'reason'], rows)}\n`;
}

/** Registers `fedlora status --coordinator HOST:PORT [--ca FILE --cert FILE --key FILE | --insecure] [--json]`. */
export function register(program: Command): void {
  program
    .command('status')
    .description("show a running coordinator's federation state and round history (operators)")
    .requiredOption('--coordinator <host:port>', 'address of the coordinator')
    .option('--ca <file>', 'federation CA certificate (PEM) that signed the coordinator certificate')
    .option('--cert <file>', 'client certificate (PEM) when the coordinator requires mTLS')
    .option('--key <file>', 'key of --cert (PEM)')
    .option('--server-name <name>', "name in the coordinator's certificate when it differs from the host dialled")
    .option('--insecure', 'plaintext gRPC, for a development coordinator started with insecure: true')
    .option('--timeout <ms>', 'give up after this many milliseconds', intOption('--timeout', 100, 600_000), 10_000)
    .option('--json', 'print one JSON document on stdout')
    .action(async (flags: StatusFlags) => {
      const report = await fetchStatus(flags);
      if (flags.json) printJson(report);
      else process.stdout.write(formatStatus(report));
    });
}
