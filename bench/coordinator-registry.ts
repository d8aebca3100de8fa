/**
 * Coordinator memory against the registered population (issue 14: "coordinator peak RSS grows at
 * most 1.2x from population 1,000 to 10,000 at the same cohort"), measured by
 * bench/coordinator-memory.ts with the coordinator in its own process. Prints one JSON document:
 * per case, the coordinator's peak RSS, V8 heap and external memory (its own
 * process.memoryUsage() sampled every 250 ms), the heap still reachable after a full collection
 * at the end (retained state, as opposed to garbage), the calls it served, the rounds and the
 * load average; then the 10k/1k peak RSS ratio of each repetition. `--repeat N` interleaves the
 * populations (1k, 10k, 1k, 10k, ...) so a change of load on a shared machine hits both.
 * `--heap-profile DIR` writes a sampling heap profile of the garbage that reached the old
 * generation (Chrome DevTools format). `--plain` measures without SecAgg+.
 *
 *   node --import tsx bench/coordinator-registry.ts [--populations 1000,10000] [--cohort 100] [--rounds 2] [--repeat 2] [--plain] [--heap-profile DIR]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CoordinatorMemory } from './coordinator-memory.js';
import { DIM, measureCoordinator, population } from './coordinator-memory.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const cohort = Number(arg('--cohort', '100'));
const rounds = Number(arg('--rounds', '2'));
const repeat = Number(arg('--repeat', '1'));
const secagg = !process.argv.includes('--plain');
const heapProfile = process.argv.includes('--heap-profile') ? arg('--heap-profile', '') : undefined;
const dir = await mkdtemp(join(tmpdir(), 'fedlora-registry-'));
try {
  const pops = [];
  for (const p of arg('--populations', '1000,10000').split(',').map(Number)) pops.push(await population(p, dir, secagg));
  const cases: Array<CoordinatorMemory & { repetition: number }> = [];
  for (let r = 1; r <= repeat; r++) {
    for (const pop of pops) cases.push({ repetition: r, ...(await measureCoordinator(pop, { cohort, rounds, secagg, ...(heapProfile ? { heapProfile } : {}) })) });
  }
  // Largest population's peak over the smallest's, per repetition.
  const ratios = Array.from({ length: repeat }, (_, k) => {
    const rep = cases.filter((c) => c.repetition === k + 1);
    return rep.at(-1)!.peakRssBytes / rep[0]!.peakRssBytes;
  });
  process.stdout.write(`${JSON.stringify({ bench: 'coordinator-registry', dimension: DIM, cohort, rounds, secagg, cases, peakRssRatios: ratios, peakRssRatioMax: Math.max(...ratios) }, null, 2)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
