/**
 * Coordinator memory against the registered population (issue 14: "coordinator peak RSS grows at
 * most 1.2x from population 1,000 to 10,000 at the same cohort"). The coordinator runs in its own
 * process (this file with --serve: FederationCoordinator + the gRPC server on 127.0.0.1, SecAgg+,
 * an adapter of 24,576 values as the bundled model's LoRA update); this process drives the
 * population as `fedlora simulate` does (virtual-population.ts: every institution registers,
 * idle ones only check in over one shared channel, the cohort is materialised per round) with a
 * trainer that returns a fixed pseudo-random delta (no model: what is measured is the
 * coordinator). Prints one JSON document: per population, the coordinator's peak RSS (its own
 * /proc/PID/status VmHWM-style sampling every 250 ms) and the rounds.
 *
 *   node --import tsx bench/coordinator-registry.ts [--populations 1000,10000] [--cohort 100] [--rounds 2]
 */
import { spawn } from 'node:child_process';
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

/** The coordinator process: serves one federation, reports its peak RSS and rounds on stdout. */
async function serve(population: number, cohort: number, rounds: number): Promise<void> {
  const keys = new Map<string, Uint8Array>();
  for (let i = 0; i < population; i++) keys.set(nameOf(i), identityOf(nameOf(i)).publicKey);
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 250);
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
  const server = await startFederationServer(coordinator, { address: '127.0.0.1:0' });
  const baseline = process.memoryUsage().rss;
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
  const history: RoundSummary[] = await coordinator.run();
  await new Promise((r) => setTimeout(r, 3000)); // let the population hear that the run finished
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  process.stdout.write(`${JSON.stringify({ peakRssBytes: peak, rssAfterStartBytes: baseline, rounds: history.map((h) => ({ round: h.round, status: h.status, participants: h.participants, seconds: (h.endedAt - h.startedAt) / 1000 })) })}\n`);
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

/** Runs one population against a coordinator in a child process; returns the child's report. */
async function measure(population: number, cohort: number, rounds: number): Promise<object> {
  const here = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', here, '--serve', String(population), String(cohort), String(rounds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const { port } = JSON.parse((await lines.next()).value as string) as { port: number };
  const address = `127.0.0.1:${port}`;
  const channel = createSharedChannel({ address });
  const members = new Map(Array.from({ length: population }, (_, i) => [nameOf(i), identityOf(nameOf(i)).publicKey]));
  const stop = new AbortController();
  const started = performance.now();
  const seen = runPopulation({
    address,
    channel,
    names: Array.from({ length: population }, (_, i) => nameOf(i)),
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
          secure: { identitySecretKey: identityOf(nameOf(i)).secretKey, members, rng: seededRandomBytes(`bench-rng:${i}`) },
        }),
    }),
    signal: stop.signal,
    logger: silentLogger,
  });
  const report = JSON.parse((await lines.next()).value as string) as object;
  stop.abort();
  const population_ = await seen;
  channel.close();
  await new Promise((r) => child.once('exit', r));
  return { population, cohort, ...report, peakMaterialised: population_.peakMaterialised, wallSeconds: (performance.now() - started) / 1000 };
}

if (process.argv[2] === '--serve') {
  await serve(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  const cohort = Number(arg('--cohort', '100'));
  const rounds = Number(arg('--rounds', '2'));
  const cases = [];
  for (const p of arg('--populations', '1000,10000').split(',').map(Number)) cases.push(await measure(p, cohort, rounds));
  const [a, b] = cases as Array<{ peakRssBytes: number }>;
  process.stdout.write(`${JSON.stringify({ bench: 'coordinator-registry', dimension: DIM, cases, ...(a && b ? { peakRssRatio: b.peakRssBytes / a.peakRssBytes } : {}) }, null, 2)}\n`);
}
