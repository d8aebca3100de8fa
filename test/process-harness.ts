/**
 * Running fedlora as separate operating-system processes for end-to-end tests: provision a
 * federation into a temporary directory, spawn `fedlora coordinator` / `fedlora client` with
 * environment overrides, follow their pino JSON logs (stderr) line by line and wait for events,
 * and make sure no child outlives the test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The CLI entry point (`node BIN ...`). */
export const BIN = fileURLToPath(new URL('../apps/cli/bin/fedlora.mjs', import.meta.url));

const run = promisify(execFile);

/** One pino log line, parsed. */
export type LogEvent = Record<string, unknown> & { event?: string };

/** A spawned fedlora process with its parsed log and its exit. */
export interface FedloraProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every JSON log line seen so far on stderr. */
  readonly events: LogEvent[];
  /** Non-JSON stderr lines (banners, warnings), for failure messages. */
  readonly text: string[];
  /** Everything written to stdout. */
  stdout(): string;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Resolves with the first event matching `pred` (already seen or future); rejects after `timeoutMs` or on exit. */
  waitFor(pred: (e: LogEvent) => boolean, timeoutMs: number, what?: string): Promise<LogEvent>;
  /** The last `n` stderr lines, for assertion messages. */
  tail(n?: number): string;
}

/** Small settings that keep a real federation round to a few seconds on a loaded machine. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  FEDLORA_ROUNDS_LOCAL_STEPS: '2',
  FEDLORA_ROUNDS_SEQ_LEN: '32',
  FEDLORA_ROUNDS_BATCH_SIZE: '2',
  FEDLORA_ROUNDS_DEADLINE_SECONDS: '60',
};

/** A free TCP port on 127.0.0.1 (bound and released; a tiny race is acceptable in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Provisions a local TLS federation into a fresh temporary directory; returns the directory. */
export async function provision(opts: { clients: number; rounds: number; port: number }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-e2e-'));
  const out = join(dir, 'fed');
  await run(process.execPath, [BIN, 'provision', '--clients', String(opts.clients), '--rounds', String(opts.rounds), '--port', String(opts.port), '--out', out], {
    maxBuffer: 4 << 20,
  });
  return out;
}

/** Removes a provisioned federation's temporary directory. */
export function removeFederation(dir: string): void {
  rmSync(join(dir, '..'), { recursive: true, force: true });
}

/** Spawns `node BIN ...args` with `env` added to this process's environment. */
export function spawnFedlora(name: string, args: string[], env: Record<string, string> = {}): FedloraProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: LogEvent[] = [];
  const text: string[] = [];
  const lines: string[] = [];
  let out = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (lines.length > 400) lines.shift();
      try {
        const e = JSON.parse(line) as unknown;
        if (typeof e === 'object' && e !== null) events.push(e as LogEvent);
        else text.push(line);
      } catch {
        text.push(line);
      }
    }
    for (const w of [...waiters]) w();
  });
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      for (const w of [...waiters]) w();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const tail = (n = 30): string => `--- ${name} (last ${n} stderr lines) ---\n${lines.slice(-n).join('\n')}`;
  const waitFor = (pred: (e: LogEvent) => boolean, timeoutMs: number, what = 'event'): Promise<LogEvent> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = events.find(pred);
        if (hit) {
          cleanup();
          resolve(hit);
        } else if (done) {
          cleanup();
          reject(new Error(`${name} exited before logging ${what}\n${tail()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${name}: no ${what} within ${timeoutMs} ms\n${tail()}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { name, child, events, text, stdout: () => out, exited, waitFor, tail };
}

/** Resolves with the exit of `p`, or rejects (after killing it) when it takes longer than `timeoutMs`. */
export async function exitWithin(p: FedloraProcess, timeoutMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${p.name} did not exit within ${timeoutMs} ms\n${p.tail()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`, but rejected (with the process's last log lines) as soon as any of `procs` exits first. */
export async function unlessExited<T>(promise: Promise<T>, procs: FedloraProcess[]): Promise<T> {
  let stop = false;
  const early = procs.map((p) =>
    p.exited.then((code) => {
      if (!stop) throw new Error(`${p.name} exited (${code}) before it was expected to\n${p.tail()}`);
      return undefined as never;
    }),
  );
  try {
    return await Promise.race([promise, ...early]);
  } finally {
    stop = true;
  }
}

/** SIGKILLs every process that is still running (test cleanup). */
export function killAll(procs: Iterable<FedloraProcess>): void {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}

/** A predicate for `waitFor`: the log event `event`, optionally of round `round`. */
export const isEvent =
  (event: string, round?: number) =>
  (e: LogEvent): boolean =>
    e.event === event && (round === undefined || e.round === round);
