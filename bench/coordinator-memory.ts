/**
 * The coordinator's memory against its registered population, measured in its own process
 * (`serve`: FederationCoordinator + the gRPC server on 127.0.0.1, SecAgg+ or plain, an adapter of
 * 24,576 values as the bundled model's LoRA update), driven by this process exactly as `fedlora
 * simulate` drives it (virtual-population.ts: every institution registers, idle ones check in, in
 * batches, over one shared channel, the cohort is materialised per round) with a trainer that
 * returns a fixed pseudo-random delta (no model: what is measured is the coordinator).
 * Used by bench/coordinator-registry.ts (1k vs 10k) and bench/scale.ts (the coordinator column).
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LocalTrainer, RoundSummary } from '@fedlora/federation';
import { FederationCoordinator, createStrategy, runClient, silentLogger } from '@fedlora/federation';
import { generateIdentity } from '@fedlora/secagg';
import { cryptoRandomBytes, seededRandomBytes } from '@fedlora/tensor';
import { createSharedChannel, startFederationServer } from '@fedlora/transport-grpc';
import { runPopulation } from '@fedlora/cli';

/** Values in the adapter (the bundled model's LoRA update). */
export const DIM = 24_576;
const nameOf = (i: number) => `inst-${i + 1}`;
/** Every party derives the same identity of an institution from its name (a benchmark, not a deployment). */
const identityOf = (name: string) => generateIdentity(seededRandomBytes(`bench-identity:${name}`));

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
async function serve(population: number, cohort: number, rounds: number, secagg: boolean, keysFile: string, heapProfile: string | undefined): Promise<void> {
  // The population's public identity keys, handed over by the driving process (generated once per population).
  const hex = secagg ? (await readFile(keysFile, 'utf8')).trim().split('\n') : [];
  const keys = new Map(hex.map((h, i) => [nameOf(i), Uint8Array.from(Buffer.from(h, 'hex'))]));
  const memory = memoryPeaks();
  const coordinator = new FederationCoordinator({
    federationId: 'bench-registry',
    rounds,
    minClients: Math.min(21, cohort),
    minAvailableClients: population,
    clientsPerRound: cohort,
    livenessMs: 600_000,
    roundDeadlineMs: 600_000,
    localSteps: 1,
    learningRate: 1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [DIM], data: new Float32Array(DIM) }]]),
    ...(secagg ? { secureAggregation: { identityOf: (n: string) => keys.get(n), clipNorm: 10, stageTimeoutMs: 60_000, rng: cryptoRandomBytes } } : {}),
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
  // A failed run (every attempt of a round aborted) is reported with its rounds, not as a crash.
  const history: readonly RoundSummary[] = await coordinator.run().catch(() => coordinator.rounds);
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

export interface Population {
  size: number;
  /** Every institution's public identity key, by name. */
  members: Map<string, Uint8Array>;
  /** The same keys, one hex line per institution, for the coordinator process. */
  keysFile: string;
}

/**
 * A population of `size` institutions; with `keys`, their identities, generated once (about 9 ms
 * each here) for every SecAgg+ case it is used in.
 */
export async function population(size: number, dir: string, keys = true): Promise<Population> {
  const members = new Map(keys ? Array.from({ length: size }, (_, i) => [nameOf(i), identityOf(nameOf(i)).publicKey] as const) : []);
  const keysFile = join(dir, `keys-${size}.txt`);
  await writeFile(keysFile, [...members.values()].map((k) => Buffer.from(k).toString('hex')).join('\n'));
  return { size, members, keysFile };
}

/** What one measurement of the coordinator reports. */
export interface CoordinatorMemory {
  population: number;
  cohort: number;
  secagg: boolean;
  peakRssBytes: number;
  rssAfterStartBytes: number;
  peak: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number };
  retainedHeapBytes: number;
  calls: { register: number; getTask: number; checkIn: number; checkInSessions: number };
  rounds: Array<{ round: number; status: string; participants: number; seconds: number }>;
  peakMaterialised: number;
  wallSeconds: number;
  loadAverage: [number, number];
}

/** Runs one population against a coordinator in a child process; returns the child's report. */
export async function measureCoordinator(pop: Population, o: { cohort: number; rounds: number; secagg: boolean; heapProfile?: string }): Promise<CoordinatorMemory> {
  const { cohort, rounds, secagg, heapProfile } = o;
  if (secagg && pop.members.size !== pop.size) throw new RangeError('measureCoordinator: a SecAgg+ case needs a population with keys');
  const here = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--import', 'tsx', here, '--serve', String(pop.size), String(cohort), String(rounds), secagg ? 'secagg' : 'plain', pop.keysFile, ...(heapProfile ? [heapProfile] : [])];
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
          ...(secagg ? { secure: { identitySecretKey: identityOf(nameOf(i)).secretKey, members: pop.members, rng: seededRandomBytes(`bench-rng:${i}`) } } : {}),
        }),
    }),
    signal: stop.signal,
    logger: silentLogger,
  });
  const report = JSON.parse((await lines.next()).value as string) as Omit<CoordinatorMemory, 'population' | 'cohort' | 'secagg' | 'peakMaterialised' | 'wallSeconds' | 'loadAverage'>;
  stop.abort();
  const seenBy = await seen;
  channel.close();
  await new Promise((r) => child.once('exit', r));
  const wallSeconds = (performance.now() - started) / 1000;
  return { population: pop.size, cohort, secagg, ...report, peakMaterialised: seenBy.peakMaterialised, wallSeconds, loadAverage: [loadBefore, loadavg()[0]!] };
}

// The coordinator process (spawned by measureCoordinator).
if (process.argv[2] === '--serve' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [population_, cohort, rounds] = process.argv.slice(3, 6).map(Number) as [number, number, number];
  await serve(population_, cohort, rounds, process.argv[6] === 'secagg', process.argv[7]!, process.argv[8]);
}
