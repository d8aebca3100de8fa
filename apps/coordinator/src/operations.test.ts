/**
 * An operable coordinator, started from its config as `fedlora coordinator` does: mTLS on
 * 127.0.0.1, enrolled identities, every request signed and verified against the store, one
 * coordinator per data directory, and the /metrics + /healthz endpoint.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@fedlora/store';
import { seededRandomBytes } from '@fedlora/tensor';
import type { Identity } from '@fedlora/transport-grpc';
import { GrpcConnection, createCertificateAuthority, createRequestSigner, encodePublicKey, generateIdentity, issueCertificate, loadChannelCredentials, saveIdentity } from '@fedlora/transport-grpc';
import { parseCoordinatorConfig, type CoordinatorConfig } from './config.js';
import type { ConfiguredCoordinator } from './run-from-config.js';
import { startCoordinatorFromConfig } from './run-from-config.js';

const FED = 'fed-ops';
const random = seededRandomBytes('operations-test');
const alice = generateIdentity('alice', random);
const bob = generateIdentity('bob', random);
const mallory = generateIdentity('mallory', random);
const carol = generateIdentity('carol', random);

let dir = '';
let cfg: CoordinatorConfig;
let coord: ConfiguredCoordinator;

function connect(identity: Identity): GrpcConnection {
  return new GrpcConnection({
    address: `127.0.0.1:${coord.app.port}`,
    federationId: FED,
    credentials: loadChannelCredentials({ ca: join(dir, 'ca.crt'), cert: join(dir, `${identity.name}.crt`), key: join(dir, `${identity.name}.key`) }),
    callTimeoutMs: 5000,
    signer: createRequestSigner({ federationId: FED, identity, random }),
  });
}

async function scrape(path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${coord.metricsPort}${path}`);
  return { status: r.status, body: await r.text() };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlora-ops-'));
  const ca = await createCertificateAuthority('fed-ops CA', { random });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  for (const [name, kind] of [['coordinator', 'server'], ['alice', 'client'], ['bob', 'client'], ['mallory', 'client'], ['carol', 'client']] as const) {
    const pem = await issueCertificate(ca, { commonName: name, kind, random });
    writeFileSync(join(dir, `${name}.crt`), pem.certPem);
    writeFileSync(join(dir, `${name}.key`), pem.keyPem, { mode: 0o600 });
  }
  saveIdentity(join(dir, 'coordinator.key.json'), generateIdentity('coordinator', random));
  cfg = parseCoordinatorConfig(
    {
      federationId: FED,
      listen: '127.0.0.1:0',
      tls: { ca: 'ca.crt', cert: 'coordinator.crt', key: 'coordinator.key' },
      dataDir: 'data',
      metrics: { listen: '127.0.0.1:0' },
      rounds: { total: 1, minClients: 2, deadlineSeconds: 30 },
      clients: [alice, bob, carol].map((c) => ({ name: c.name, publicKey: encodePublicKey(c.publicKey) })),
      identity: { secretKeyFile: 'coordinator.key.json' },
      log: { level: 'error' },
    },
    { baseDir: dir },
  );
  coord = await startCoordinatorFromConfig(cfg);
}, 60_000);

afterAll(async () => {
  await coord?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('coordinator started from its config', () => {
  it('refuses to start a second coordinator on the same data directory, naming the holder', async () => {
    await expect(startCoordinatorFromConfig(cfg)).rejects.toThrow(new RegExp(`in use by another coordinator \\(pid ${process.pid}`));
  });

  it('admits an enrolled client whose requests are signed', async () => {
    const conn = connect(alice);
    await expect(conn.register('alice', 4)).resolves.toEqual({ clientId: 'alice' });
    await expect(conn.getTask(0)).resolves.toMatchObject({ kind: 'wait' });
    conn.close();
  });

  it('refuses an unenrolled identity with UNAUTHENTICATED and writes the refusal to the audit log', async () => {
    const conn = connect(mallory);
    await expect(conn.register('mallory', 1)).rejects.toMatchObject({ code: 'unauthenticated' });
    conn.close();
    const store = openSqliteStore(join(cfg.dataDir, 'fedlora.db'));
    try {
      const audit = store.listAudit({ event: 'request.refused' });
      expect(audit.at(-1)).toMatchObject({ client: 'mallory', detail: { method: 'Register', reason: 'unknown-identity', code: 16 } });
    } finally {
      store.close();
    }
  });

  it('refuses a client revoked in the store (by another process) at its next request, without a restart', async () => {
    const conn = connect(bob);
    await conn.register('bob', 2);
    const operator = openSqliteStore(join(cfg.dataDir, 'fedlora.db'));
    operator.revokeClient('bob', 'test');
    operator.close();
    await expect(conn.getTask(0)).rejects.toMatchObject({ code: 'permission-denied', message: expect.stringMatching(/"bob" has been revoked/) });
    conn.close();
  });

  it('serves refusal counters by reason on /metrics and the run state on /healthz', async () => {
    const metrics = await scrape('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('fedlora_requests_refused_total{method="Register",reason="unknown-identity"} 1');
    expect(metrics.body).toContain('fedlora_requests_refused_total{method="GetTask",reason="revoked"} 1');
    expect(metrics.body).toContain('fedlora_total_rounds 1');
    expect(metrics.body).toMatch(/fedlora_rounds_completed_total 0/);
    const health = await scrape('/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ ok: true, federationId: FED, state: expect.stringMatching(/^(waiting-for-clients|training)$/), totalRounds: 1, grpcPort: coord.app.port });
  });

  it('answers the read-only status RPC without a signature', async () => {
    const conn = new GrpcConnection({
      address: `127.0.0.1:${coord.app.port}`,
      credentials: loadChannelCredentials({ ca: join(dir, 'ca.crt'), cert: join(dir, 'alice.crt'), key: join(dir, 'alice.key') }),
    });
    await expect(conn.status()).resolves.toMatchObject({ federationId: FED, totalRounds: 1, rounds: [] });
    conn.close();
  });

  // Last: it starts the round. A client configured with only a DP-SGD budget (`dpSgd: {epsilon}`)
  // spreads it over the rounds the plan announces (dp-sgd-trainer.ts); without them it cannot calibrate.
  it('announces the planned number of rounds in every plan', async () => {
    const [a, c] = [connect(alice), connect(carol)];
    await a.register('alice', 4);
    await c.register('carol', 4);
    const task = await a.getTask(20_000);
    expect(task.kind).toBe('train');
    expect(task.kind === 'train' && task.plan.training?.plannedRounds).toBe(cfg.rounds.total);
    a.close();
    c.close();
  });
});
