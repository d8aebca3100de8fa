/**
 * Coordinator memory against the registered population (issue 14: "coordinator peak RSS grows at
 * most 1.2x from population 1,000 to 10,000 at the same cohort"). The coordinator runs in its own
 * process (this file with --serve: FederationCoordinator + the gRPC server on 127.0.0.1, SecAgg+,
 * an adapter of 24,576 values as the bundled model's LoRA update); this process drives the
 * population as `fedlora simulate` does (virtual-population.ts: every institution registers,
 * idle ones check in, in batches, over one shared channel, the cohort is materialised per round)
 * with a trainer that returns a fixed pseudo-random delta (no model: what is measured is the
 * coordinator). Prints one JSON document: per case, the coordinator's peak RSS, V8 heap and
 * external memory (its own process.memoryUsage() sampled every 250 ms), the heap still reachable
 * after a full collection at the end (retained state, as opposed to garbage), the calls it served,
 * the rounds and the load average; then the 10k/1k peak RSS ratio of each repetition.
 * `--repeat N` interleaves the populations (1k, 10k, 1k, 10k, ...). `--heap-profile DIR` writes a
 * sampling heap profile of the garbage that reached the old generation (Chrome DevTools format).
 *
 *   node --import tsx bench/coordinator-registry.ts [--populations 1000,10000] [--cohort 100] [--rounds 2] [--repeat 2] [--heap-profile DIR]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LocalTrainer, RoundSummary } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, runClient, silentLogger } from '@fedlora/federation';
import { generateIdentity } from '@fedlora/secagg';
import { cryptoRandomBytes, seededRandomBytes } from '@fedlora/tensor';
import { createSharedChannel, startFederationServer } from '@fedlora/transport-grpc';
import { runPopulation } from '@fedlora/cli';

const DIM = 24_576;
const nameOf = (i: number) => `inst-${i + 1}`;
/** Every party derives the same identity of an institution from its name (a benchmark, not a deployment). */
const identityOf = (name: string) => generateIdentity(seededRandomBytes(`bench-identity:${name}`));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** Peaks of the coordinator process's memory, sampled every 250 ms (RSS, V8 heap, memory outside it). */
function memoryPeaks() {
  const peak = { rssBytes: 0, heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rssBytes = Math.max(peak.rssBytes, m.rss);
    peak.heapUsedBytes = Math.max(peak.heapUsedBytes, m.heapUsed);
    peak.heapTotalBytes = Math.max(peak.heapTotalBytes, m.heapTotal);
    peak.externalBytes = Math.max(peak.externalBytes, m.external);
  };
  sample();
  const timer = setInterval(sample, 250);
  return { peak, stop: () => (clearInterval(timer), sample(), peak) };
}

/**
 * The sampling heap profiler over objects that survived a scavenge and were collected by a later
 * mark-compact: the garbage that fills the old generation (and so the RSS high-water mark).
 */
async function promotedGarbageProfiler(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params: object = {}) => new Promise<unknown>((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  await post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
  return async () => ((await post('HeapProfiler.stopSampling')) as { profile: object }).profile;
}

/** The coordinator process: serves one federation, reports its memory, calls served and rounds on stdout. */
async function serve(population: number, cohort: number, rounds: number, keysFile: string, heapProfile: string | undefined): Promise<void> {
  // The population's public identity keys, handed over by the driving process (generated once per case).
  const hex = (await readFile(keysFile, 'utf8')).trim().split('\n');
  const keys = new Map(hex.map((h, i) => [nameOf(i), Uint8Array.from(Buffer.from(h, 'hex'))]));
  const memory = memoryPeaks();
  const coordinator = new FederationCoordinator({
    federationId: 'bench-registry',
    rounds,
    minClients: 21,
    minAvailableClients: population,
    clientsPerRound: cohort,
    livenessMs: 600_000,
    roundDeadlineMs: 600_000,
    localSteps: 1,
    learningRate: 1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [DIM], data: new Float32Array(DIM) }]]),
    secureAggregation: { identityOf: (n) => keys.get(n), clipNorm: 10, stageTimeoutMs: 60_000, rng: cryptoRandomBytes },
    rng: cryptoRandomBytes,
  });
  // Calls served, by kind (the population's check-ins are batched: sessions per call).
  const calls = { register: 0, getTask: 0, checkIn: 0, checkInSessions: 0 };
  const [register, getTask, checkIn] = [coordinator.register.bind(coordinator), coordinator.getTask.bind(coordinator), coordinator.checkIn.bind(coordinator)];
  coordinator.register = (...a) => (calls.register++, register(...a));
  coordinator.getTask = (...a) => (calls.getTask++, getTask(...a));
  coordinator.checkIn = (s) => (calls.checkIn++, (calls.checkInSessions += s.length), checkIn(s));
  const server = await startFederationServer(coordinator, { address: '127.0.0.1:0' });
  const profile = heapProfile ? await promotedGarbageProfiler() : undefined;
  const rssAfterStartBytes = process.memoryUsage().rss;
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  const history: RoundSummary[] = await coordinator.run();
  await new Promise((r) => setTimeout(r, 3000)); // let the population hear that the run finished
  const peak = memory.stop();
  if (profile) await writeFile(join(heapProfile!, `coordinator-${population}.heapprofile`), JSON.stringify(await profile()));
  // What is still reachable after a full collection (node --expose-gc): retained state, not garbage.
  (globalThis as { gc?: () => void }).gc?.();
  const retainedHeapBytes = process.memoryUsage().heapUsed;
  const summary = history.map((h) => ({ round: h.round, status: h.status, participants: h.participants, seconds: (h.endedAt - h.startedAt) / 1000 }));
  process.stdout.write(`${JSON.stringify({ peakRssBytes: peak.rssBytes, rssAfterStartBytes, peak, retainedHeapBytes, calls, rounds: summary })}\n`);
  await server.close();
}

/** A trainer whose delta is fixed pseudo-random values (the same for every run of the bench). */
function fixedTrainer(i: number): LocalTrainer {
  return {
    numExamples: 1,
    async train(_plan, global) {
      const delta = new Map([...global].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from({ length: t.data.length }, (_, j) => Math.sin(i + j) * 1e-3) }]));
      return { delta, numExamples: 1, trainLoss: 1 };
    },
  };
}

interface Population {
  size: number;
  /** Every institution's public identity key, by name. */
  members: Map<string, Uint8Array>;
  /** The same keys, one hex line per institution, for the coordinator process. */
  keysFile: string;
}

/** Generates a population's identities once (about 9 ms each here), for every repetition of its case. */
async function population(size: number, dir: string): Promise<Population> {
  const members = new Map(Array.from({ length: size }, (_, i) => [nameOf(i), identityOf(nameOf(i)).publicKey]));
  const keysFile = join(dir, `keys-${size}.txt`);
  await writeFile(keysFile, [...members.values()].map((k) => Buffer.from(k).toString('hex')).join('\n'));
  return { size, members, keysFile };
}

/** Runs one population against a coordinator in a child process; returns the child's report. */
async function measure(pop: Population, cohort: number, rounds: number, heapProfile: string | undefined): Promise<{ population: number; peakRssBytes: number }> {
  const here = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--import', 'tsx', here, '--serve', String(pop.size), String(cohort), String(rounds), pop.keysFile, ...(heapProfile ? [heapProfile] : [])];
  const loadBefore = loadavg()[0]!;
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const { port } = JSON.parse((await lines.next()).value as string) as { port: number };
  const address = `127.0.0.1:${port}`;
  const channel = createSharedChannel({ address });
  const stop = new AbortController();
  const started = performance.now();
  const seen = runPopulation({
    address,
    channel,
    names: Array.from({ length: pop.size }, (_, i) => nameOf(i)),
    numExamplesOf: () => 1,
    materialise: async (i, session) => ({
      guards: {},
      trainer: fixedTrainer(i),
      run: (signal) =>
        runClient({
          name: nameOf(i),
          connection: session,
          trainer: fixedTrainer(i),
          pollMs: 0,
          heartbeatMs: 1000,
          untilIdle: true,
          signal,
          secure: { identitySecretKey: identityOf(nameOf(i)).secretKey, members: pop.members, rng: seededRandomBytes(`bench-rng:${i}`) },
        }),
    }),
    signal: stop.signal,
    logger: silentLogger,
  });
  const report = JSON.parse((await lines.next()).value as string) as { peakRssBytes: number };
  stop.abort();
  const seenBy = await seen;
  channel.close();
  await new Promise((r) => child.once('exit', r));
  const wallSeconds = (performance.now() - started) / 1000;
  return { population: pop.size, cohort, ...report, peakMaterialised: seenBy.peakMaterialised, wallSeconds, loadAverage: [loadBefore, loadavg()[0]!] } as never;
}

if (process.argv[2] === '--serve') {
  await serve(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]), process.argv[6]!, process.argv[7]);
} else {
  const cohort = Number(arg('--cohort', '100'));
  const rounds = Number(arg('--rounds', '2'));
  const repeat = Number(arg('--repeat', '1'));
  const heapProfile = process.argv.includes('--heap-profile') ? arg('--heap-profile', '') : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'fedlora-registry-'));
  try {
    const pops = [];
    for (const p of arg('--populations', '1000,10000').split(',').map(Number)) pops.push(await population(p, dir));
    // Repetitions interleave the populations (1k, 10k, 1k, 10k, ...) so a change of load on a shared machine hits both.
    const cases: Array<{ population: number; peakRssBytes: number; repetition: number }> = [];
    for (let r = 1; r <= repeat; r++) for (const pop of pops) cases.push({ repetition: r, ...(await measure(pop, cohort, rounds, heapProfile)) });
    const ratios = Array.from({ length: repeat }, (_, k) => {
      const rep = cases.filter((c) => c.repetition === k + 1);
      return rep.at(-1)!.peakRssBytes / rep[0]!.peakRssBytes;
    });
    const out = { bench: 'coordinator-registry', dimension: DIM, cohort, rounds, cases, peakRssRatios: ratios, peakRssRatioMax: Math.max(...ratios) };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
