import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock } from './data-dir-lock.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fedlora-lock-'));
  dirs.push(d);
  return d;
}

describe('acquireDataDirLock', () => {
  it('refuses a second coordinator on the same directory, naming the holder', () => {
    const dir = tempDir();
    const lock = acquireDataDirLock(dir, { pid: 111, host: 'h', isAlive: () => true });
    expect(() => acquireDataDirLock(dir, { pid: 222, host: 'h', isAlive: () => true })).toThrow(/in use by another coordinator \(pid 111 on h since/);
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    acquireDataDirLock(dir, { pid: 222, host: 'h' }).release();
  });

  it('takes over a lock whose process died (kill -9) on this host', () => {
    const dir = tempDir();
    acquireDataDirLock(dir, { pid: 111, host: 'h' });
    const lock = acquireDataDirLock(dir, { pid: 222, host: 'h', isAlive: (pid) => pid !== 111 });
    expect(lock.path).toBe(join(dir, 'coordinator.lock'));
    lock.release();
  });

  it('never breaks a lock held from another host', () => {
    const dir = tempDir();
    acquireDataDirLock(dir, { pid: 111, host: 'other-host' });
    expect(() => acquireDataDirLock(dir, { pid: 222, host: 'h', isAlive: () => false })).toThrow(expect.objectContaining({ code: 'busy' }));
  });

  it('treats an unreadable lock file as held', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'coordinator.lock'), 'garbage');
    expect(() => acquireDataDirLock(dir)).toThrow(/unknown process \(unreadable lock file\)/);
  });

  it('detects a real dead pid with the default probe', () => {
    const dir = tempDir();
    acquireDataDirLock(dir, { pid: 2 ** 22 + 12345 }); // above pid_max on Linux: cannot be alive
    acquireDataDirLock(dir).release();
  });
});
