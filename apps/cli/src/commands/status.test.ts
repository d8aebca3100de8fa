import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalTrainer } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, runClient } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes } from '@fedlora/tensor';
import type { RunningServer } from '@fedlora/transport-grpc';
import { GrpcConnection, channelCredentials, createCertificateAuthority, issueCertificate, serverCredentials, startFederationServer } from '@fedlora/transport-grpc';
import { CliError } from '../output.js';
import { fetchStatus, formatStatus } from './status.js';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const random = seededRandomBytes('status-test');
const trainer: LocalTrainer = {
  numExamples: 2,
  async train(_plan, global) {
    const delta: NamedTensors = new Map();
    for (const [k, t] of global) delta.set(k, { shape: [...t.shape], data: new Float32Array(t.data.length).fill(0.1) });
    return { delta, numExamples: 2, trainLoss: 0.5 };
  },
};

let dir = '';
let server: RunningServer;
let coordinator: FederationCoordinator;

/** Runs the real CLI (one process start) and collects its output. */
function fedlora(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlora-status-'));
  const ca = await createCertificateAuthority('fed-status CA', { random });
  const serverPem = await issueCertificate(ca, { commonName: 'coordinator', kind: 'server', random });
  const operator = await issueCertificate(ca, { commonName: 'operator', kind: 'client', random });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'operator.crt'), operator.certPem);
  writeFileSync(join(dir, 'operator.key'), operator.keyPem, { mode: 0o600 });
  coordinator = new FederationCoordinator({
    federationId: 'fed-status',
    rounds: 2,
    minClients: 1,
    roundDeadlineMs: 20_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [2, 2], data: new Float32Array(4) }]]),
    rng: seededRandomBytes('status-coordinator'),
  });
  server = await startFederationServer(coordinator, {
    address: '127.0.0.1:0',
    credentials: serverCredentials({ ca: ca.certPem, cert: serverPem.certPem, key: serverPem.keyPem, requireClientCert: true }),
  });
  const run = coordinator.run();
  const conn = new GrpcConnection({ address: `127.0.0.1:${server.port}`, credentials: channelCredentials({ ca: ca.certPem, cert: operator.certPem, key: operator.keyPem }) });
  await runClient({ name: 'inst-1', connection: conn, trainer });
  conn.close();
  await run;
}, 30_000);

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tls = () => ['--ca', join(dir, 'ca.crt'), '--cert', join(dir, 'operator.crt'), '--key', join(dir, 'operator.key')];

describe('fedlora status', () => {
  it('--json prints exactly one JSON document with the federation state and round history (mTLS)', async () => {
    const r = await fedlora(['status', '--coordinator', `127.0.0.1:${server.port}`, ...tls(), '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ coordinator: `127.0.0.1:${server.port}`, federationId: 'fed-status', state: 'finished', totalRounds: 2 });
    expect(doc.rounds.map((x: { round: number; status: string; participants: number }) => [x.round, x.status, x.participants])).toEqual([
      [1, 'completed', 1],
      [2, 'completed', 1],
    ]);
  }, 60_000);

  it('prints a readable summary without --json', async () => {
    const report = await fetchStatus({ coordinator: `127.0.0.1:${server.port}`, ca: join(dir, 'ca.crt'), cert: join(dir, 'operator.crt'), key: join(dir, 'operator.key'), timeout: 5000 });
    const text = formatStatus(report);
    expect(text).toMatch(/^federation fed-status at 127\.0\.0\.1:\d+: finished\nround 2 of 2/);
    expect(text).toMatch(/completed/);
  });

  it('names the address when the coordinator cannot be reached', async () => {
    await expect(fetchStatus({ coordinator: '127.0.0.1:1', insecure: true, timeout: 2000 })).rejects.toThrow(/cannot get the status of the coordinator at 127\.0\.0\.1:1: .*is a coordinator running there\?/);
  });

  it('says to add --cert/--key when the coordinator requires mutual TLS and none was given', async () => {
    await expect(fetchStatus({ coordinator: `127.0.0.1:${server.port}`, ca: join(dir, 'ca.crt'), timeout: 5000 })).rejects.toThrow(/requires mutual TLS: add --cert and --key/);
  });

  it('rejects contradictory or missing transport flags, naming them', async () => {
    await expect(fetchStatus({ coordinator: '127.0.0.1:7443', insecure: true, ca: 'ca.crt', timeout: 1000 })).rejects.toThrow(CliError);
    await expect(fetchStatus({ coordinator: '127.0.0.1:7443', timeout: 1000 })).rejects.toThrow(/--ca is required/);
    await expect(fetchStatus({ coordinator: '127.0.0.1:7443', ca: join(dir, 'ca.crt'), cert: 'x.crt', timeout: 1000 })).rejects.toThrow(/--cert and --key go together/);
    await expect(fetchStatus({ coordinator: 'nowhere', insecure: true, timeout: 1000 })).rejects.toThrow(/--coordinator expects host:port/);
  });
});
