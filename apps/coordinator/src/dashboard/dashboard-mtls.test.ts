import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cryptoRandomBytes } from '@fedlora/tensor';
import { createCertificateAuthority, issueCertificate, type PemPair } from '@fedlora/transport-grpc';
import type { DashboardRefusal, RunningDashboard } from './dashboard-server.js';
import { startDashboardServer } from './dashboard-server.js';

let ca: PemPair;
let other: PemPair;
let dash: RunningDashboard;
const certs: Record<string, PemPair> = {};
const refused: DashboardRefusal[] = [];

beforeAll(async () => {
  ca = await createCertificateAuthority('fed-ca', { random: cryptoRandomBytes });
  other = await createCertificateAuthority('other-ca', { random: cryptoRandomBytes });
  const server = await issueCertificate(ca, { commonName: 'coordinator', kind: 'server', random: cryptoRandomBytes });
  certs.auditor = await issueCertificate(ca, { commonName: 'auditor-1', kind: 'client', random: cryptoRandomBytes });
  certs.institution = await issueCertificate(ca, { commonName: 'inst-1', kind: 'client', random: cryptoRandomBytes });
  certs.forged = await issueCertificate(other, { commonName: 'auditor-1', kind: 'client', random: cryptoRandomBytes });
  dash = await startDashboardServer({
    listen: '127.0.0.1:0',
    source: {
      coordinator: { status: () => ({ federationId: 'fed', state: 'training', currentRound: 1, completedRounds: 0, totalRounds: 2, connectedClients: 1, rounds: [] }) },
      privacy: () => ({ verified: false, ledgers: [], refusals: [] }),
      securityEvents: () => [],
      enrolled: () => ['inst-1'],
    },
    auth: { tokens: [], certificates: [{ commonName: 'auditor-1', role: 'auditor' }] },
    tls: { cert: server.certPem, key: server.keyPem, ca: ca.certPem },
    onRefused: (r) => refused.push(r),
  });
});
afterAll(() => dash.close());

function get(client?: PemPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dash.port, path: '/api/state', ca: ca.certPem, servername: 'localhost', ...(client ? { cert: client.certPem, key: client.keyPem } : {}) }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard over mutual TLS', () => {
  it('lets a federation-CA certificate named in the config in, with its role', async () => {
    const r = await get(certs.auditor);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).role).toBe('auditor');
    expect(dash.url).toMatch(/^https:/);
  });

  it('refuses a valid certificate the config does not name (403), one from another CA (403) and none (401), and reports each', async () => {
    expect((await get(certs.institution)).status).toBe(403);
    expect((await get(certs.forged)).status).toBe(403);
    expect((await get()).status).toBe(401);
    expect(refused.map((r) => r.status)).toEqual([403, 403, 401]);
    expect(refused[0]!.reason).toContain('"inst-1" is not allowed');
    expect(refused[1]!.reason).toContain('not signed by the federation CA');
  });
});
