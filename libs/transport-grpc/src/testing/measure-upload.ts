/**
 * Measures resumable uploads against one-shot uploads on 127.0.0.1, in the same run (the machine
 * is shared: only same-run comparisons mean anything). Prints one JSON document.
 *
 *   cd libs/transport-grpc && npx tsx src/testing/measure-upload.ts [--mib 32] [--runs 4]
 *
 * - oneShotMs / resumableMs: median time to upload an update of `mib` MiB (1 MiB chunks), rounds
 *   alternating between a one-shot stream without hashes (the original protocol) and a resumable
 *   upload with per-chunk and whole-tensor SHA-256 (GrpcConnection);
 * - cut: one resumable upload whose connection is cut halfway: where it resumed and how many
 *   bytes the coordinator received in all (the update's size when nothing is sent twice).
 */
import * as grpc from '@grpc/grpc-js';
import type { NamedTensors } from '@fedlora/tensor';
import { chunkTensors, seededRandomBytes } from '@fedlora/tensor';
import type { RoundPlan } from '@fedlora/federation';
import { FederationCoordinator, createStrategy } from '@fedlora/federation';
import { GrpcConnection } from '../client.js';
import { federationClientCtor } from '../proto.js';
import { chunkToProto, headerToProto } from '../serde.js';
import { startFederationServer } from '../server.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MIB = arg('mib', 32);
const RUNS = arg('runs', 4);
const N = (MIB * 1024 * 1024) / 4;

const zeros = (): NamedTensors => new Map([['w', { shape: [N], data: new Float32Array(N) }]]);
const update = (): NamedTensors => new Map([['w', { shape: [N], data: Float32Array.from({ length: N }, (_, i) => Math.sin(i) * 1e-3) }]]);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const rounds = 2 * RUNS + 1;
  const coordinator = new FederationCoordinator({
    federationId: 'measure',
    rounds,
    minClients: 1,
    roundDeadlineMs: 120_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: zeros(),
    rng: seededRandomBytes('measure-upload'),
  });
  const received = { bytes: 0 };
  const resumedAt: number[] = [];
  const server = await startFederationServer(coordinator, {
    address: '127.0.0.1:0',
    maxUploadBytes: 4 * MIB * 1024 * 1024,
    onBytes: (d, n) => d === 'in' && (received.bytes += n),
    onUploadEvent: (e) => e.event === 'upload.resumed' && resumedAt.push(e.offset),
  });
  const run = coordinator.run();
  const address = `127.0.0.1:${server.port}`;
  let cutNow = false;
  const cutter: grpc.Interceptor = (options, nextCall) => {
    if (!cutNow || !String(options.method_definition.path).endsWith('/UploadUpdate')) return new grpc.InterceptingCall(nextCall(options));
    cutNow = false;
    let sent = 0;
    let holding = false;
    const half = Math.floor(MIB / 2) + 1; // header + half the 1 MiB chunks
    const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
      sendMessage(message, next) {
        if (holding) return;
        if (sent++ < half) return next(message);
        holding = true;
        setTimeout(() => call.cancelWithStatus(grpc.status.UNAVAILABLE, 'cut'), 200);
      },
      halfClose(next) {
        if (!holding) next();
      },
    });
    return call;
  };
  const conn = new GrpcConnection({ address, interceptors: [cutter], uploadRetry: { initialBackoffMs: 20 } });
  await conn.register('measure', 1);
  const raw = new (federationClientCtor())(address, grpc.credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => grpc.ClientWritableStream<object>>;
  const nextPlan = async (): Promise<RoundPlan> => {
    for (;;) {
      const t = await conn.getTask(5000);
      if (t.kind === 'train') return t.plan;
    }
  };
  const delta = update();
  const token = (conn as unknown as { token: string }).token;
  const header = (plan: RoundPlan) => ({ clientId: 'measure', round: plan.round, nonce: plan.nonce, numExamples: 1, trainLoss: 0, tensors: [{ name: 'w', shape: [N] }], metrics: {} });
  const oneShot = async (plan: RoundPlan): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const call = raw.UploadUpdate!((e: grpc.ServiceError | null) => (e ? reject(e) : resolve()));
      void (async () => {
        const send = async (m: object) => {
          if (!call.write(m)) await new Promise((r) => call.once('drain', r));
        };
        await send({ header: headerToProto(header(plan), token) });
        for (const c of chunkTensors(delta)) await send({ chunk: chunkToProto(plan.round, c) });
        call.end();
      })();
    });
  const times = { oneShot: [] as number[], resumable: [] as number[] };
  for (let r = 0; r < 2 * RUNS; r++) {
    const plan = await nextPlan();
    const t0 = performance.now();
    if (r % 2 === 0) await oneShot(plan);
    else await conn.uploadUpdate({ header: header(plan), delta });
    times[r % 2 === 0 ? 'oneShot' : 'resumable'].push(performance.now() - t0);
  }
  const plan = await nextPlan();
  received.bytes = 0;
  cutNow = true;
  await conn.uploadUpdate({ header: header(plan), delta });
  const cut = { resumedAtBytes: resumedAt, receivedBytes: received.bytes, updateBytes: N * 4 };
  await run;
  conn.close();
  await server.close();
  console.log(JSON.stringify({ mib: MIB, runs: RUNS, oneShotMs: Math.round(median(times.oneShot)), resumableMs: Math.round(median(times.resumable)), samples: times, cut }, (_k, v) => (typeof v === 'number' ? Math.round(v) : v)));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
