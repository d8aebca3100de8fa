/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser.)
/**
 * Issue 15 proof: `fedlora simulate --dashboard` serves the coordinator's dashboard, and a person
 * opening it in a real browser (Debian's headless Chromium, driven by playwright-core; no browser
 * is downloaded) sees the rounds table fill in as rounds complete, an epsilon chart with one
 * point per committed round equal to what the verified federation ledger says, and the budget
 * refusal that stops the run. The run is sized so that each institution's budget (epsilon 8)
 * pays for two central rounds (4.73, 7.08) but not a third (9.01): round 3 is refused.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext } from 'playwright-core';
import { verifyLedgerFile } from '@fedlora/privacy';
import { freePort, killAll, spawnFedlora, unlessExited, type FedloraProcess } from './process-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const DOCS_SHOT = fileURLToPath(new URL('../docs/dashboard.png', import.meta.url));

/** Launches Debian's Chromium headless with a fresh profile (`profileDir`, new and empty) and nothing that phones home. */
async function launchChromium(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

const procs: FedloraProcess[] = [];
let browser: BrowserContext | undefined;
const dir = mkdtempSync(join(tmpdir(), 'fedlora-dash-e2e-'));
afterAll(async () => {
  await browser?.close();
  killAll(procs);
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the dashboard URL once simulate prints it on stderr. */
async function dashboardUrl(p: FedloraProcess, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const line = p.text.find((l) => l.startsWith('dashboard: http'));
    if (line) return line.slice('dashboard: '.length).split(' ')[0]!;
    if (Date.now() > until) throw new Error(`no dashboard URL within ${timeoutMs} ms\n${p.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Chromium is a Debian package (.ci/run installs it); without it there is no browser to test in.
describe.skipIf(!existsSync(CHROMIUM))('dashboard in headless Chromium (simulate --dashboard)', () => {
  it('shows rounds as they complete, the verified epsilon per committed round, and the budget refusal', async () => {
    // The browser is up before the federation starts, so the page sees the run from its first rounds.
    const launched = launchChromium(join(dir, 'profile'));
    const port = await freePort();
    const out = join(dir, 'run');
    const sim = spawnFedlora('simulate', [
      'simulate', '--clients', '3', '--rounds', '3', '--local-steps', '2', '--batch-size', '2', '--seq-len', '32', '--chars-per-client', '4000', '--eval-sequences', '2',
      '--dp-mode', 'central', '--dp-clip', '0.1', '--dp-noise-multiplier', '1', '--client-epsilon', '8',
      '--dashboard', `127.0.0.1:${port}`, '--dashboard-linger', '600', '--out', out, '--json',
    ]);
    procs.push(sim);
    browser = await launched;
    const url = await dashboardUrl(sim, 120_000);
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(url);

    // Record what the rounds table shows at every change, from the first render on.
    await page.waitForSelector('#main:not([hidden])', { timeout: 60_000 });
    await page.evaluate(() => {
      const w = window as unknown as { seen: number[] };
      w.seen = [document.querySelectorAll('#rounds tbody tr').length];
      new MutationObserver(() => w.seen.push(document.querySelectorAll('#rounds tbody tr').length)).observe(document.querySelector('#rounds tbody')!, { childList: true });
    });
    // Round 3 is refused by every institution three times, then the run fails: 2 committed rows and 3 aborted ones.
    await unlessExited(page.waitForFunction(() => document.querySelectorAll('#rounds tbody tr').length === 5 && document.body.dataset.rounds === '5', null, { timeout: 240_000 }), [sim]);
    await unlessExited(page.waitForFunction(() => document.querySelector('#summary')?.getAttribute('data-state') === 'failed', null, { timeout: 60_000 }), [sim]);

    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    expect(seen[0], `rows at first sight: ${seen.join(',')}`).toBeLessThan(5);
    expect(seen.every((n, i) => i === 0 || n >= seen[i - 1]!), `the table only grows: ${seen.join(',')}`).toBe(true);
    const rows = await page.$$eval('#rounds tbody tr', (trs) => trs.map((tr) => ({ round: Number(tr.getAttribute('data-round')), status: tr.getAttribute('data-status'), declined: tr.children[6]!.textContent })));
    expect(rows.map((r) => `${r.round}:${r.status}`)).toEqual(['1:completed', '2:completed', '3:aborted', '3:aborted', '3:aborted']);
    expect(rows.slice(2).map((r) => r.declined)).toEqual(['3', '3', '3']);

    // The epsilon chart: one point per committed round of the federation ledger, at the verifier's value.
    const ledger = verifyLedgerFile(join(out, 'federation-ledger.jsonl'));
    expect(ledger.valid).toBe(true);
    const committed = ledger.rounds.filter((r) => r.kind === 'round');
    expect(committed.map((r) => r.round)).toEqual([1, 2]);
    const labels = await page.$$eval('#epsilon-chart svg path[aria-label*="(federation), round"]', (ps) => ps.map((p) => ({ label: p.getAttribute('aria-label')!, title: p.querySelector('title')?.textContent ?? '' })));
    expect(labels).toHaveLength(committed.length);
    for (const [i, r] of committed.entries()) {
      expect(labels[i]!.label).toContain(`round ${r.round}: epsilon ${r.epsilon.toFixed(4)}`);
      // What a person sees on hover: mechanism and noise.
      expect(labels[i]!.title).toContain('Gaussian, central');
      expect(labels[i]!.title).toContain('noise z = 1, C = 0.1');
    }
    const tableEps = await page.$$eval('#privacy-rounds tbody tr[data-ledger="coordinator (federation)"]', (trs) => trs.map((tr) => Number(tr.getAttribute('data-epsilon'))));
    expect(tableEps).toEqual(committed.map((r) => r.epsilon));
    // Integer round ticks only (no 1.5).
    const ticks = await page.$$eval('#epsilon-chart svg .role-axis-label text', (ts) => ts.map((t) => t.textContent ?? ''));
    expect(ticks.some((t) => /^\d+\.\d+$/.test(t) && Number(t) < 3)).toBe(false);

    // The budget refusal: each institution's ledger records "refused" for round 3.
    const refusals = await page.$$eval('#refusals li[data-kind="refused"]', (lis) => lis.map((li) => li.textContent ?? ''));
    expect(refusals.length).toBe(3);
    for (const r of refusals) expect(r).toMatch(/round 3: refused \(3 attempts\): refused: the round would bring epsilon to 9\.0\d+, above this institution's budget 8/);
    expect(await page.textContent('#verified')).toBe('ledgers verified');
    expect(problems, problems.join('\n')).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    // README's picture: refreshed on request only (FEDLORA_UPDATE_DOCS_SCREENSHOT=1), it is committed.
    if (process.env.FEDLORA_UPDATE_DOCS_SCREENSHOT === '1') mkdirSync(join(DOCS_SHOT, '..'), { recursive: true });
    if (process.env.FEDLORA_UPDATE_DOCS_SCREENSHOT === '1') await page.screenshot({ path: DOCS_SHOT, clip: { x: 0, y: 0, width: 1200, height: 1500 }, fullPage: true });
    sim.child.kill('SIGTERM');
  }, 420_000);
});
