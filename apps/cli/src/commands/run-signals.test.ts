import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
