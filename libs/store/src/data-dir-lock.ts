/**
 * One coordinator per data directory. SQLite would serialise two writers, but two coordinators
 * on one store would interleave rounds and corrupt the federation's history, so the coordinator
 * takes a lock file (`<dir>/coordinator.lock`, created with O_EXCL, holding its pid and host).
 * A lock left by a process that died (kill -9) is taken over when that pid no longer exists on
 * this host; a lock from another host is never broken automatically.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StoreError, toStoreError } from './store-error.js';

/** A held lock; `release()` is idempotent. */
export interface DataDirLock {
  path: string;
  release(): void;
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/** Options of `acquireDataDirLock` (process probes are parameters so tests can simulate). */
export interface LockOptions {
  /** Whether a pid is alive on this host (default: process.kill(pid, 0)). */
  isAlive?: (pid: number) => boolean;
  pid?: number;
  host?: string;
  now?: () => number;
}

/** Takes the data directory's coordinator lock or throws StoreError('busy') naming the holder. */
export function acquireDataDirLock(dir: string, options: LockOptions = {}): DataDirLock {
  const path = join(dir, 'coordinator.lock');
  const me: LockOwner = { pid: options.pid ?? process.pid, host: options.host ?? hostname(), since: new Date((options.now ?? Date.now)()).toISOString() };
  const isAlive = options.isAlive ?? defaultIsAlive;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      try {
        writeSync(fd, `${JSON.stringify(me)}\n`);
      } finally {
        closeSync(fd);
      }
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw toStoreError(err, path);
    }
    const owner = readOwner(path);
    if (owner && owner.host === me.host && !isAlive(owner.pid)) {
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {
        // Someone else removed it first; retry the exclusive create.
      }
      continue;
    }
    const who = owner ? `pid ${owner.pid} on ${owner.host} since ${owner.since}` : 'an unknown process (unreadable lock file)';
    throw new StoreError('busy', `${dir} is in use by another coordinator (${who}); stop it first, or if it is gone from that host remove ${path}`);
  }
  throw new StoreError('busy', `${dir}: could not take ${path}; another coordinator is starting at the same time`);
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host, since: String(o.since) } : undefined;
  } catch {
    return undefined;
  }
}

function defaultIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
