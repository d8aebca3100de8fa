import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RoundSummary } from '@fedlora/federation';
import { Ledger, generateLedgerKey } from '@fedlora/privacy';
import { createLedgerReader } from './ledger-view.js';
import type { DashboardRefusal, RunningDashboard } from './dashboard-server.js';
import { startDashboardServer } from './dashboard-server.js';
import type { DashboardSource } from './dashboard-state.js';

const sha = (t: string) => createHash('sha256').update(t).digest('hex');
const OPERATOR = 'operator-token-0123456789abcdef0123456789';
const AUDITOR = 'auditor-token-0123456789abcdef0123456789ab';

let dir: string;
let ledgerPath: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedlora-dash-'));
  ledgerPath = join(dir, 'federation-ledger.jsonl');
  const ledger = await Ledger.open(ledgerPath, { writer: 'coordinator', secretKey: generateLedgerKey().secretKey, role: 'coordinator' }, { delta: 1e-5 });
  for (const round of [1, 2]) await ledger.append({ kind: 'round', round, unit: 'institution', params: { mode: 'central', clipNorm: 0.1, noiseMultiplier: 1, samplingRate: 1, survivors: 3 } });
  await ledger.append({ kind: 'aborted', round: 3, unit: 'institution', note: 'every client declined the round (refused: budget)' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function summary(round: number, status: RoundSummary['status']): RoundSummary {
  return { round, attempt: 1, status, participants: status === 'completed' ? 3 : 0, participantNames: status === 'completed' ? ['a', 'b', 'c'] : [], cohort: 3, dropped: [], declined: [], trainLoss: 2 - round / 10, numExamples: 9, adapterSha256: null, startedAt: 0, endedAt: 1500, metrics: {}, evaluation: { clients: 3, count: 9, loss: 2.5 - round / 10, acc: 0.25 * round } };
}

function source(): DashboardSource {
  return {
    coordinator: { status: () => ({ federationId: 'fed-<x>', state: 'training', currentRound: 3, completedRounds: 2, totalRounds: 4, connectedClients: 3, rounds: [summary(1, 'completed'), summary(2, 'completed'), summary(3, 'aborted')] }) },
    privacy: createLedgerReader(() => [ledgerPath]),
    securityEvents: () => [{ reason: 'bad-signature', count: 4 }],
    enrolled: () => ['a', 'b', 'c'],
  };
}

let dash: RunningDashboard | undefined;
const refused: DashboardRefusal[] = [];
afterEach(async () => {
  await dash?.close();
  dash = undefined;
  refused.length = 0;
});

/** One raw HTTP request (any method, any header), so the fuzz can send what fetch would refuse to. */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: dash!.port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes on a TCP connection and returns the first line the server answers (or '' when it just closes). */
function rawBytes(bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(dash!.port, '127.0.0.1', () => sock.end(bytes));
    let got = '';
    sock.setTimeout(10_000, () => sock.destroy(new Error('no answer within 10 s')));
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    sock.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve(got.split('\r\n')[0] ?? '') : reject(e)));
  });
}

describe('dashboard server', () => {
  it('on loopback without auth serves the operator view with security headers', async () => {
    dash = await startDashboardServer({ listen: '127.0.0.1:0', source: source(), auth: { tokens: [], certificates: [] } });
    const page = await raw('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).not.toMatch(/<script>|<script(?![^>]*src=)/);
    const state = await raw('GET', '/api/state');
    expect(state.status).toBe(200);
    const s = JSON.parse(state.body);
    expect(s.role).toBe('operator');
    expect(s.federation.id).toBe('fed-<x>');
    expect(s.rounds.map((r: { status: string }) => r.status)).toEqual(['completed', 'completed', 'aborted']);
    expect(s.security.counts).toEqual([{ reason: 'bad-signature', count: 4 }]);
    expect(s.privacy.verified).toBe(true);
    expect(s.privacy.ledgers[0].series.points.map((p: { round: number }) => p.round)).toEqual([1, 2]);
    expect(s.privacy.refusals[0].note).toContain('refused: budget');
    // One point per committed round in the epsilon chart, each with its hover title.
    expect((s.charts.epsilon.match(/aria-label="[^"]*round \d+: epsilon/g) ?? []).length).toBe(2);
    expect(s.charts.epsilon).toContain('<title>coordinator (federation), round 2: epsilon');
    const again = await raw('GET', '/api/state', { 'if-none-match': state.headers.etag as string });
    expect(again.status).toBe(304);
  });

  it('with tokens: refuses a missing or wrong token (401, reported) and cuts the view to the role', async () => {
    dash = await startDashboardServer({
      listen: '127.0.0.1:0',
      source: source(),
      auth: { tokens: [{ role: 'operator', sha256: sha(OPERATOR) }, { role: 'auditor', sha256: sha(AUDITOR) }], certificates: [] },
      onRefused: (r) => refused.push(r),
    });
    const none = await raw('GET', '/api/state');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(none.body).not.toContain('fed-');
    const wrong = await raw('GET', '/api/state', { authorization: `Bearer ${OPERATOR}x` });
    expect(wrong.status).toBe(401);
    expect(refused.map((r) => r.reason)).toEqual(['no credentials (bearer token or client certificate)', 'bearer token does not match any configured token']);
    expect(JSON.stringify(refused)).not.toContain(OPERATOR);

    const auditor = JSON.parse((await raw('GET', '/api/state', { authorization: `Bearer ${AUDITOR}` })).body);
    expect(auditor.role).toBe('auditor');
    expect(auditor.security).toBeUndefined();
    expect(auditor.training).toBeUndefined();
    expect(auditor.federation.enrolled).toBeNull();
    expect(auditor.privacy.ledgers).toHaveLength(1);
    const operator = JSON.parse((await raw('GET', '/api/state', { authorization: `Bearer ${OPERATOR}` })).body);
    expect(operator.role).toBe('operator');
    expect(operator.security.total).toBe(4);
    expect(operator.training.map((t: { evalLoss: number; mcqAccuracy: number; evaluated: string }) => [t.evalLoss, t.mcqAccuracy, t.evaluated])).toEqual([
      [2.4, 0.25, 'at the start of the round'],
      [2.3, 0.5, 'at the start of the round'],
    ]);
    expect(operator.charts.mcq).toContain('MCQ accuracy, round 2: 0.5000');
  });

  it('survives a fuzz of methods, paths, headers and tokens, and still serves afterwards', async () => {
    dash = await startDashboardServer({ listen: '127.0.0.1:0', source: source(), auth: { tokens: [{ role: 'operator', sha256: sha(OPERATOR) }], certificates: [] }, onRefused: (r) => refused.push(r) });
    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND'];
    const paths = ['/', '/api/state', '/api/state?x=1', '/../../etc/passwd', '/%2e%2e/%2e%2e/', '/api/', '/dashboard.js/..', '//api//state', '/constructor', '/__proto__', '/hasOwnProperty', `/${'a'.repeat(4000)}`];
    const statuses = new Set<number>();
    for (let i = 0; i < 150; i++) {
      const b = randomBytes(8);
      const token = b[1]! % 3 === 0 ? randomBytes(b[2]! % 64).toString('base64') : b[1]! % 3 === 1 ? `${OPERATOR.slice(0, b[2]! % OPERATOR.length)}\u00e9` : 'x'.repeat(b[2]! * 10);
      const headers: Record<string, string> = { authorization: b[3]! % 2 ? `Bearer ${token}` : token.replace(/[^\x20-\x7e]/g, '?') };
      if (b[4]! % 5 === 0) headers['x-junk'] = 'y'.repeat(20_000); // beyond the 8 KiB header cap: 431
      const method = methods[b[5]! % methods.length]!;
      try {
        const r = await raw(method, paths[b[6]! % paths.length]!, headers);
        statuses.add(r.status);
        expect(r.status).not.toBe(500);
        if (r.status === 200 && method === 'GET') expect(r.headers['content-security-policy']).toBeDefined();
      } catch (err) {
        // Node's client may refuse to send some requests (e.g. invalid header characters) or see the socket closed on CONNECT.
        expect(String(err)).toMatch(/Invalid character|socket hang up|ECONNRESET|HPE_/);
      }
    }
    // What an HTTP client would not send: CONNECT, upgrades, garbage, a request line without end.
    expect(await rawBytes('CONNECT example.org:443 HTTP/1.1\r\nhost: example.org\r\n\r\n')).toMatch(/^HTTP\/1\.1 405/);
    expect(await rawBytes('GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')).toMatch(/^HTTP\/1\.1 405/);
    expect(await rawBytes(randomBytes(512))).toMatch(/^(HTTP\/1\.1 400 Bad Request)?$/);
    expect(await rawBytes('GET /api/state HTTP/1.1\r\nauthorization: Bearer \u0000\u0001\r\n\r\n')).toMatch(/^HTTP\/1\.1 40[01]/);
    expect([...statuses].some((s) => s === 401)).toBe(true);
    expect([...statuses].some((s) => s === 405)).toBe(true);
    expect([...statuses].some((s) => s === 404)).toBe(true);
    expect((await raw('GET', '/')).status).toBe(200);
    expect((await raw('GET', '/api/state', { authorization: `Bearer ${OPERATOR}` })).status).toBe(200);
  });

  it('answers 431 to oversized headers and 405 to other methods', async () => {
    dash = await startDashboardServer({ listen: '127.0.0.1:0', source: source(), auth: { tokens: [], certificates: [] } });
    expect((await raw('GET', '/', { 'x-big': 'z'.repeat(16_000) })).status).toBe(431);
    const post = await raw('POST', '/api/state');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await raw('GET', '/nope')).status).toBe(404);
  });
});
