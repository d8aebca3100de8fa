/// <reference lib="dom" />
// (page callbacks run in the browser.)
/**
 * Issue 15, access control on a real `fedlora coordinator` process: the dashboard configured
 * from the environment with one operator token (its SHA-256 only). Requests without it or with a
 * wrong one get 401 and are logged (`dashboard.refused`) and audited (SQLite audit log); a fuzz
 * of methods, paths, headers and tokens leaves the coordinator running; the operator, opening the
 * page with the token in the address's fragment, sees the refusals counted in Security events.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { freePort, isEvent, killAll, provision, removeFederation, spawnFedlora, type FedloraProcess } from './process-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = randomBytes(24).toString('base64url');
const procs: FedloraProcess[] = [];
let fedDir: string | undefined;
let browser: BrowserContext | undefined;
const profile = mkdtempSync(join(tmpdir(), 'fedlora-dash-auth-'));
afterAll(async () => {
  await browser?.close();
  killAll(procs);
  if (fedDir) removeFederation(fedDir);
  rmSync(profile, { recursive: true, force: true });
});

function get(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard access control on a running coordinator', () => {
  it('refuses and logs requests without the token, survives a fuzz, and shows the refusals to the operator', async () => {
    const grpcPort = await freePort();
    const dashPort = await freePort();
    fedDir = await provision({ clients: 2, rounds: 2, port: grpcPort });
    const coord = spawnFedlora('coordinator', ['coordinator', '--config', join(fedDir, 'coordinator.yaml')], {
      FEDLORA_DASHBOARD_LISTEN: `127.0.0.1:${dashPort}`,
      FEDLORA_DASHBOARD_AUTH_TOKENS: `[{role: operator, sha256: "${createHash('sha256').update(TOKEN).digest('hex')}"}]`,
    });
    procs.push(coord);
    await coord.waitFor(isEvent('dashboard.listening'), 180_000, 'dashboard.listening');

    expect((await get(dashPort, 'GET', '/api/state')).status).toBe(401);
    expect((await get(dashPort, 'GET', '/api/state', { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    const logged = await coord.waitFor((e) => e.event === 'dashboard.refused' && e.reason === 'bearer token does not match any configured token', 600_000, 'dashboard.refused');
    expect(JSON.stringify(coord.events)).not.toContain(TOKEN);
    expect(logged.status).toBe(401);

    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
    const paths = ['/', '/api/state', '/api/state/../state', '/%00', '/dashboard.js?x=<script>', `/${'x'.repeat(3000)}`, '/api/events', '/metrics'];
    for (let i = 0; i < 120; i++) {
      const b = randomBytes(6);
      const headers: Record<string, string> = {};
      if (b[0]! % 3 === 0) headers.authorization = `Bearer ${randomBytes(b[1]! % 40).toString('base64url')}`;
      if (b[0]! % 3 === 1) headers.authorization = `Basic ${'y'.repeat(b[1]! * 8)}`;
      if (b[2]! % 6 === 0) headers['x-pad'] = 'p'.repeat(12_000);
      try {
        const r = await get(dashPort, methods[b[3]! % methods.length]!, paths[b[4]! % paths.length]!, headers);
        expect([200, 204, 304, 401, 403, 404, 405, 431]).toContain(r.status);
      } catch (err) {
        expect(String(err)).toMatch(/socket hang up|ECONNRESET/);
      }
    }
    expect(coord.child.exitCode, coord.tail()).toBeNull();
    const ok = await get(dashPort, 'GET', '/api/state', { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    const state = JSON.parse(ok.body) as { role: string; security: { counts: Array<{ reason: string; count: number }> }; federation: { enrolled: string[] } };
    expect(state.role).toBe('operator');
    expect(state.federation.enrolled).toEqual(['inst-1', 'inst-2']);
    // The audit log keeps the first 10 per reason and minute in full, the rest as one summary when the window ends.
    expect(state.security.counts.find((c) => c.reason === 'dashboard: unauthenticated')?.count).toBeGreaterThanOrEqual(2);

    // Chromium is a Debian package (.ci/run installs it); without it the browser half cannot run.
    if (!existsSync(CHROMIUM)) return;
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${dashPort}/`);
    await page.waitForSelector('#login:not([hidden])', { timeout: 30_000 });
    expect(await page.textContent('#summary')).toBe('Not signed in.');
    await page.goto(`http://127.0.0.1:${dashPort}/#token=${TOKEN}`);
    await page.waitForSelector('#security-table tr[data-reason="dashboard: unauthenticated"]', { timeout: 30_000 });
    expect(page.url()).not.toContain(TOKEN);
    expect(await page.textContent('#federation-id')).toMatch(/^fed-/);
  }, 1_200_000);
});
