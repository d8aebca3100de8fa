/**
 * `fedlora bench scale --json`: how `fedlora simulate` scales with the population and the cohort
 * (issue 14 §6). Each case is one `fedlora simulate` process (real coordinator and clients over
 * gRPC on 127.0.0.1, local steps 1, IID partition, 2 rounds) at population P, cohort C, with and
 * without SecAgg+; reported per case:
 *   - secondsPerRound: mean duration of the completed rounds (the simulate JSON's durationMs);
 *   - wholePeakRssBytes: the peak over 250 ms samples of the summed VmRSS of the simulate process
 *     and all its descendants (the training workers), read from /proc;
 *   - coordinatorPeakRssBytes: the coordinator's own peak when the simulate JSON reports it
 *     (`coordinator.peakRssBytes`), else null: the simulator runs the coordinator inside its own
 *     process, whose RSS (`simulatePeakRssBytes`) is then an upper bound;
 *   - survivors and status of each round.
 * Then `simulate --workers 1` against `--workers 2` on a cohort of 100 (local steps 4, no SecAgg+).
 * Peer: none runs here (see `peer` in the output). One case at a time; a case over --max-seconds
 * is killed and reported with its error.
 *
 *   node --import tsx bench/scale.ts [--quick] [--max-seconds 1800] [--populations 100,1000,10000] [--cohorts 10,100,1000] [--parts sweep,workers]
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../apps/cli/bin/fedlora.mjs', import.meta.url));

/** One measured simulate run. */
export interface ScaleCase {
  population: number;
  cohort: number;
  secagg: boolean;
  workers: number;
  localSteps: number;
  secondsPerRound: number | null;
  rounds: Array<{ round: number; status: string; participants: number; survivors?: number; seconds: number }>;
  wholePeakRssBytes: number;
  simulatePeakRssBytes: number | null;
  coordinatorPeakRssBytes: number | null;
  wallSeconds: number;
  error?: string;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const list = (s: string) => s.split(',').map(Number);

/** VmRSS (bytes) of `pid` and every descendant, from /proc. */
function treeRss(pid: number): number {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // the process exited between readdir and read
    }
  }
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // gone
    }
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

/** Runs one `fedlora simulate` case and measures it. */
async function runCase(c: { population: number; cohort: number; secagg: boolean; workers: number; localSteps: number; rounds: number }, maxSeconds: number): Promise<ScaleCase> {
  const args = [BIN, 'simulate', '--clients', String(c.population), '--clients-per-round', String(c.cohort), '--rounds', String(c.rounds), '--local-steps', String(c.localSteps)];
  args.push('--partition', 'iid', '--eval-sequences', '1', '--workers', String(c.workers), '--seed', `scale-${c.population}-${c.cohort}`, '--json');
  if (c.secagg) args.push('--secagg', '--stage-timeout', '600');
  process.stderr.write(`bench scale: population ${c.population}, cohort ${c.cohort}${c.secagg ? ', SecAgg+' : ''}, workers ${c.workers}...\n`);
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, treeRss(child.pid!))), 250);
  const killer = setTimeout(() => child.kill('SIGKILL'), maxSeconds * 1000);
  const code = await new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  clearInterval(sampler);
  clearTimeout(killer);
  const base = { ...c, wholePeakRssBytes: peak, wallSeconds: Math.round(performance.now() - started) / 1000 };
  if (code !== 0) {
    const why = code === 'SIGKILL' ? `killed after --max-seconds ${maxSeconds}` : `exit ${code}`;
    return { ...base, secondsPerRound: null, rounds: [], simulatePeakRssBytes: null, coordinatorPeakRssBytes: null, error: `${why}: ${err.trim().split('\n').slice(-3).join(' | ').slice(0, 600)}` };
  }
  const r = JSON.parse(out) as {
    rounds: Array<{ round: number; status: string; participants: number; survivors?: number; durationMs: number }>;
    memory?: { peakRssBytes: number };
    coordinator?: { peakRssBytes?: number };
  };
  const done = r.rounds.filter((x) => x.status === 'completed');
  return {
    ...base,
    secondsPerRound: done.length ? done.reduce((s, x) => s + x.durationMs, 0) / done.length / 1000 : null,
    rounds: r.rounds.map((x) => ({ round: x.round, status: x.status, participants: x.participants, ...(x.survivors !== undefined ? { survivors: x.survivors } : {}), seconds: x.durationMs / 1000 })),
    simulatePeakRssBytes: r.memory?.peakRssBytes ?? null,
    coordinatorPeakRssBytes: r.coordinator?.peakRssBytes ?? null,
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const populations = list(arg('--populations', quick ? '100,1000' : '100,1000,10000'));
  const cohorts = list(arg('--cohorts', quick ? '10,100' : '10,100,1000'));
  const maxSeconds = Number(arg('--max-seconds', '1800'));
  const workers = Number(arg('--workers', String(availableParallelism())));
  const parts = arg('--parts', 'sweep,workers').split(',');
  const cases: ScaleCase[] = [];
  for (const population of parts.includes('sweep') ? populations : []) {
    for (const cohort of cohorts.filter((k) => k <= population)) {
      for (const secagg of [false, true]) {
        cases.push(await runCase({ population, cohort, secagg, workers, localSteps: 1, rounds: 2 }, maxSeconds));
        // Each case as it ends (stderr), so a sweep cut short still leaves its numbers.
        process.stderr.write(`bench scale case: ${JSON.stringify(cases.at(-1))}\n`);
      }
    }
  }
  // Training in worker processes: one against two on a cohort of 100 (enough training to matter: 4 local steps).
  const cohort = quick ? 20 : 100;
  const compare = parts.includes('workers');
  const one = compare ? await runCase({ population: cohort, cohort, secagg: false, workers: 1, localSteps: 4, rounds: 2 }, maxSeconds) : undefined;
  const two = compare ? await runCase({ population: cohort, cohort, secagg: false, workers: 2, localSteps: 4, rounds: 2 }, maxSeconds) : undefined;
  const speedup = one?.secondsPerRound && two?.secondsPerRound ? one.secondsPerRound / two.secondsPerRound : null;
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'scale',
        machine: { cores: availableParallelism(), loadAverage1m: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]) },
        settings: { quick, rounds: 2, localSteps: 1, partition: 'iid', workers, maxSeconds },
        cases,
        ...(compare ? { workers: { cohort, localSteps: 4, workers1: one, workers2: two, speedup } } : {}),
        peer: {
          name: null,
          reason:
            'no peer runs here: PyTorch has no federated simulator, and Flower (flwr), whose virtual-client engine is the natural peer, is not installed on this machine (no network installs); the comparison is between fedlora configurations in the same run',
        },
      },
      null,
      2,
    )}\n`,
  );
}

await main();
