/**
 * `fedlora bench scale --json`: how `fedlora simulate` scales with the population and the cohort
 * (issue 14 §6). Each sweep case is one `fedlora simulate` process (real coordinator and clients
 * over gRPC on 127.0.0.1, local steps 1, IID partition, 2 rounds) at population P, cohort C, with
 * and without SecAgg+; reported per case:
 *   - secondsPerRound: mean duration of the completed rounds (the simulate JSON's durationMs);
 *   - wholePeakRssBytes: the peak over 250 ms samples of the summed VmRSS of the simulate process
 *     and all its descendants (the training workers), read from /proc; CPU seconds per process;
 *   - coordinatorPeakRssBytes: the simulator runs the coordinator inside its own process, so the
 *     coordinator alone is measured in a process of its own (part `coordinator`,
 *     bench/coordinator-memory.ts: the same population driver and coordinator code, a fixed-delta
 *     trainer instead of the model) at the same population, cohort and SecAgg+ setting;
 *   - survivors and status of each round.
 * Then (part `workers`) `simulate --workers 1` against `--workers 2` on a cohort of 100 (local
 * steps 4, no SecAgg+): interleaved repetitions, round 1 a reported warm-up, CPU time per process
 * (compareWorkers). Peer: none runs here (see `peer` in the output). One case at a time; a case
 * over --max-seconds is killed and reported with its error.
 *
 *   node --import tsx bench/scale.ts [--quick] [--max-seconds 1800] [--populations 100,1000,10000] [--cohorts 10,100,1000]
 *     [--parts sweep,coordinator,workers] [--repeat 2] [--workers-rounds 3]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Population } from './coordinator-memory.js';
import { measureCoordinator, population } from './coordinator-memory.js';
import { TreeSampler } from './proc-tree.js';

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
  /** CPU seconds (user + system) of the simulate process and of each of its workers. */
  cpuSeconds: { simulate: number; workers: number[] };
  /** 1-minute load average when the case started and ended. */
  loadAverage: [number, number];
  wallSeconds: number;
  error?: string;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}
const list = (s: string) => s.split(',').map(Number);

/** Runs one `fedlora simulate` case and measures it. */
async function runCase(c: { population: number; cohort: number; secagg: boolean; workers: number; localSteps: number; rounds: number; charsPerClient?: number }, maxSeconds: number): Promise<ScaleCase> {
  const args = [BIN, 'simulate', '--clients', String(c.population), '--clients-per-round', String(c.cohort), '--rounds', String(c.rounds), '--local-steps', String(c.localSteps)];
  args.push('--partition', 'iid', '--eval-sequences', '1', '--workers', String(c.workers), '--seed', `scale-${c.population}-${c.cohort}`, '--json');
  if (c.secagg) args.push('--secagg', '--stage-timeout', '600');
  if (c.charsPerClient !== undefined) args.push('--chars-per-client', String(c.charsPerClient));
  process.stderr.write(`bench scale: population ${c.population}, cohort ${c.cohort}${c.secagg ? ', SecAgg+' : ''}, workers ${c.workers}...\n`);
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const sampler = new TreeSampler(child.pid!);
  const killer = setTimeout(() => child.kill('SIGKILL'), maxSeconds * 1000);
  const code = await new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const cpu = sampler.stop();
  clearTimeout(killer);
  const base = {
    ...c,
    wholePeakRssBytes: sampler.peakRssBytes,
    cpuSeconds: { simulate: cpu.rootCpuSeconds, workers: cpu.descendantsCpuSeconds },
    loadAverage: [loadBefore, loadavg()[0]!] as [number, number],
    wallSeconds: Math.round(performance.now() - started) / 1000,
  };
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

/**
 * Text per client in the workers comparison: what is compared is training, so each client's share
 * is kept small enough that tokenizing it (once in the simulator for its size, once in the worker
 * that trains it) does not swamp the rounds; 4 local steps of the default batch still fit in it.
 */
const WORKERS_CHARS_PER_CLIENT = 60_000;

/** Mean of `xs` (null when empty). */
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * `--workers 1` against `--workers 2` on one cohort, honestly on a shared machine: the runs
 * interleave (1, 2, 1, 2, ...) so a change of load hits both; round 1 is a warm-up (each worker
 * loads its partition and tokenizes its clients for the first time), reported but not in the
 * mean; the speedup is per repetition, over the rounds after it; CPU time per process says
 * whether the work was split or only waited for the cores.
 */
async function compareWorkers(cohort: number, rounds: number, repeat: number, maxSeconds: number) {
  const runs: Array<ScaleCase & { repetition: number }> = [];
  for (let r = 1; r <= repeat; r++) {
    for (const workers of [1, 2]) {
      runs.push({ repetition: r, ...(await runCase({ population: cohort, cohort, secagg: false, workers, localSteps: 4, rounds, charsPerClient: WORKERS_CHARS_PER_CLIENT }, maxSeconds)) });
      process.stderr.write(`bench scale workers: ${JSON.stringify(runs.at(-1))}\n`);
    }
  }
  const measured = (c: ScaleCase) => mean(c.rounds.filter((x) => x.round > 1 && x.status === 'completed').map((x) => x.seconds));
  const warmUp = (c: ScaleCase) => c.rounds.find((x) => x.round === 1)?.seconds ?? null;
  const repetitions = Array.from({ length: repeat }, (_, k) => {
    const [one, two] = [1, 2].map((w) => runs.find((c) => c.repetition === k + 1 && c.workers === w)!);
    const [m1, m2, w1, w2] = [measured(one!), measured(two!), warmUp(one!), warmUp(two!)];
    return {
      repetition: k + 1,
      secondsPerRoundAfterWarmUp: { workers1: m1, workers2: m2 },
      warmUpRoundSeconds: { workers1: w1, workers2: w2 },
      speedup: m1 && m2 ? m1 / m2 : null,
      warmUpSpeedup: w1 && w2 ? w1 / w2 : null,
      loadAverage: { workers1: one!.loadAverage, workers2: two!.loadAverage },
    };
  });
  return { cohort, localSteps: 4, charsPerClient: WORKERS_CHARS_PER_CLIENT, rounds, warmUpRounds: 1, runs, repetitions, speedupMean: mean(repetitions.map((r) => r.speedup).filter((x): x is number => x !== null)) };
}

/** The coordinator alone, in its own process, for each case of the sweep (bench/coordinator-memory.ts). */
async function coordinatorCases(grid: Array<{ population: number; cohort: number; secagg: boolean }>, rounds: number) {
  const dir = await mkdtemp(join(tmpdir(), 'fedlora-scale-'));
  const pops = new Map<string, Population>();
  const out = [];
  try {
    for (const c of grid) {
      const key = `${c.population}:${c.secagg}`;
      if (!pops.has(key)) pops.set(key, await population(c.population, dir, c.secagg));
      const m = await measureCoordinator(pops.get(key)!, { cohort: c.cohort, rounds, secagg: c.secagg });
      out.push(m);
      process.stderr.write(`bench scale coordinator: ${JSON.stringify({ ...c, peakRssBytes: m.peakRssBytes, rounds: m.rounds })}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const populations = list(arg('--populations', quick ? '100,1000' : '100,1000,10000'));
  const cohorts = list(arg('--cohorts', quick ? '10,100' : '10,100,1000'));
  const maxSeconds = Number(arg('--max-seconds', '1800'));
  const workers = Number(arg('--workers', String(availableParallelism())));
  const parts = arg('--parts', 'sweep,coordinator,workers').split(',');
  const grid = populations.flatMap((population) => cohorts.filter((k) => k <= population).flatMap((cohort) => [false, true].map((secagg) => ({ population, cohort, secagg }))));
  const cases: ScaleCase[] = [];
  for (const c of parts.includes('sweep') ? grid : []) {
    cases.push(await runCase({ ...c, workers, localSteps: 1, rounds: 2 }, maxSeconds));
    // Each case as it ends (stderr), so a sweep cut short still leaves its numbers.
    process.stderr.write(`bench scale case: ${JSON.stringify(cases.at(-1))}\n`);
  }
  // The simulator runs the coordinator inside its own process: its RSS alone is measured with the
  // coordinator in a process of its own, driven by the same population code (no model).
  const coordinator = parts.includes('coordinator') ? await coordinatorCases(grid, 2) : [];
  for (const c of cases) c.coordinatorPeakRssBytes ??= coordinator.find((m) => m.population === c.population && m.cohort === c.cohort && m.secagg === c.secagg)?.peakRssBytes ?? null;
  const cohort = quick ? 20 : 100;
  const compare = parts.includes('workers') ? await compareWorkers(cohort, Number(arg('--workers-rounds', '3')), Number(arg('--repeat', '2')), maxSeconds) : undefined;
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: 'scale',
        machine: { cores: availableParallelism(), loadAverage1m: loadavg()[0] },
        settings: { quick, rounds: 2, localSteps: 1, partition: 'iid', workers, maxSeconds },
        cases,
        ...(parts.includes('coordinator')
          ? { coordinator: { how: 'bench/coordinator-memory.ts: FederationCoordinator + gRPC server in a process of its own, the population driven as simulate drives it, a fixed-delta trainer (no model), 2 rounds', cases: coordinator } }
          : {}),
        ...(compare ? { workers: compare } : {}),
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
