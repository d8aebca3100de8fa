import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fedlora-cli-signals-'));
  const r = spawnSync(process.execPath, [BIN, 'provision', '--clients', '2', '--rounds', '2', '--out', join(dir, 'fed'), '--json'], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts the real CLI, sends SIGTERM once stderr shows `ready`, and collects what it printed. */
function terminateWhen(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let sent = false;
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && ready.test(stderr)) {
        sent = true;
        p.kill('SIGTERM');
      }
    });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a signal ends a run without reporting it finished', () => {
  it('coordinator: SIGTERM before the last round prints no "finished" summary and exits 130', async () => {
    const r = await terminateWhen(
      ['coordinator', '--config', join(dir, 'fed', 'coordinator.yaml'), '--json'],
      { FEDLORA_COORDINATOR_LISTEN: '127.0.0.1:0' },
      /listening on port \d+/,
    );
    expect(r.code).toBe(130);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('SIGTERM, shutting down');
    expect(r.stderr).not.toMatch(/rounds committed|run finished/);
  }, 60_000);

  it('client: SIGTERM while it waits for the coordinator reports that it stopped, not that the federation finished', async () => {
    const r = await terminateWhen(
      ['client', '--config', join(dir, 'fed', 'clients', 'inst-1.yaml'), '--json'],
      { FEDLORA_CLIENT_COORDINATOR: '127.0.0.1:1' },
      /"event":"client\.reconnecting"/,
    );
    expect(JSON.parse(r.stdout)).toEqual({ client: 'inst-1', backend: expect.any(String), roundsTrained: [], stopped: 'SIGTERM received' });
  }, 60_000);
});

/** Starts `fedlora client` (node directly), sends SIGTERM once `ready(stderr)` holds, and waits for the process to end. */
function clientStoppedBy(env: Record<string, string>, ready: (stderr: string) => boolean): Promise<{ code: number | null; stdout: string; stderr: string; pid: number; exitedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'client', '--config', join(dir, 'fed', 'clients', 'inst-1.yaml'), '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    let sentAt = 0;
    const check = () => {
      if (!sentAt && ready(stderr)) {
        sentAt = Date.now();
        p.kill('SIGTERM');
      }
    };
    const poll = setInterval(check, 50);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => {
      stderr += d;
      check();
    });
    // A client that sleeps out its backoff or waits for its call's deadline would take far longer than this.
    const guard = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`the client was still running 85 s after it started (SIGTERM sent: ${sentAt > 0}); stderr:\n${stderr.slice(-2000)}`));
    }, 25_000 + 60_000);
    p.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(guard);
      resolve({ code, stdout, stderr, pid: p.pid!, exitedAfterMs: sentAt ? Date.now() - sentAt : -1 });
    });
  });
}

/** Whether a process with this pid still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a client told to stop exits promptly, whatever it was waiting for', () => {
  it('SIGTERM during a long reconnect backoff (60 s): the process is gone long before the backoff would end', async () => {
    const r = await clientStoppedBy(
      { FEDLORA_CLIENT_COORDINATOR: '127.0.0.1:1', FEDLORA_CLIENT_RECONNECT_INITIAL_BACKOFF_MS: '60000', FEDLORA_CLIENT_RECONNECT_MAX_BACKOFF_MS: '60000' },
      (stderr) => /"event":"client\.reconnecting".*"delayMs":60000/.test(stderr),
    );
    expect(r.exitedAfterMs).toBeGreaterThanOrEqual(0);
    expect(r.exitedAfterMs).toBeLessThan(25_000);
    expect(alive(r.pid)).toBe(false);
    expect(JSON.parse(r.stdout)).toMatchObject({ client: 'inst-1', roundsTrained: [], stopped: 'SIGTERM received' });
  }, 120_000);

  it('SIGTERM while its Register call waits on a coordinator that accepted the connection and never answers (TLS handshake pending, 30 s call deadline)', async () => {
    const connections: Socket[] = [];
    const hung = createServer((c) => {
      c.on('error', () => {});
      connections.push(c);
    });
    await new Promise<void>((res) => hung.listen(0, '127.0.0.1', res));
    const port = (hung.address() as AddressInfo).port;
    try {
      const r = await clientStoppedBy({ FEDLORA_CLIENT_COORDINATOR: `127.0.0.1:${port}` }, (stderr) => /"event":"data\.prepared"/.test(stderr) && connections.length > 0);
      expect(r.exitedAfterMs).toBeGreaterThanOrEqual(0);
      expect(r.exitedAfterMs).toBeLessThan(25_000);
      expect(alive(r.pid)).toBe(false);
      expect(r.stderr).not.toMatch(/"event":"client\.reconnecting"/); // it never sat out the call's deadline
      expect(JSON.parse(r.stdout)).toMatchObject({ client: 'inst-1', roundsTrained: [], stopped: 'SIGTERM received' });
    } finally {
      for (const c of connections) c.destroy();
      hung.close();
    }
  }, 120_000);
});
