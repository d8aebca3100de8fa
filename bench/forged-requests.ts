/**
 * `bench/forged-requests.ts` (#16 finding 5): what forged request signatures cost the coordinator.
 * Prints ONE JSON document on stdout; progress on stderr. About a minute on 2 shared cores.
 *
 *   npx tsx bench/forged-requests.ts [--requests 1000]
 *
 * - verifyRate: Ed25519 verifications per second of one request envelope, tweetnacl (what the
 *   coordinator used) vs node:crypto (what it uses now), and Python's `cryptography` (OpenSSL) in
 *   the same run as the peer.
 * - flood: a real coordinator server in a child process (gRPC on 127.0.0.1, signature gate on)
 *   receives `--requests` forged Heartbeat requests, 50 in flight, while it records its own
 *   event-loop delay (perf_hooks monitorEventLoopDelay, 1 ms resolution) and an unsigned GetStatus
 *   probe every 50 ms measures how long an honest caller waits. Two forgeries: `fresh` (current
 *   timestamp, the right body hash, a random signature claiming an enrolled client: it passes every
 *   cheap check) and `issue` (zero signature, 1970 timestamp, as in the issue). Two verifiers:
 *   `before` (tweetnacl, signature checked first, no throttle: the code before the fix, rebuilt in
 *   forged-requests-server.ts), `after` (the shipped one) and, for `fresh`, `unthrottled` (the
 *   shipped one with the per-peer throttle off: what node:crypto alone buys).
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import nacl from 'tweetnacl';
import { AUTH_METADATA_KEYS, canonicalRequestBytes, ed25519Verify, federationService, hashBody, newNonce, type RequestEnvelope } from '@fedlora/transport-grpc';
import { cryptoRandomBytes } from '@fedlora/tensor';

const FED = 'fed-bench';
const HEARTBEAT = '/fedlora.v1.Federation/Heartbeat';
const argRequests = process.argv.indexOf('--requests');
const REQUESTS = argRequests > 0 ? Number(process.argv[argRequests + 1]) : 1000;
const log = (s: string): void => void process.stderr.write(`${s}\n`);

function perSecond(n: number, fn: () => void): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return Math.round((n / (performance.now() - t0)) * 1000);
}

async function verifyRates(): Promise<Record<string, number>> {
  const kp = nacl.sign.keyPair.fromSeed(cryptoRandomBytes(32));
  const env: RequestEnvelope = { federationId: FED, clientName: 'inst-1', round: 3, method: HEARTBEAT, bodyHash: hashBody(Buffer.from('body')), nonce: newNonce(cryptoRandomBytes), timestamp: Date.now() };
  const msg = canonicalRequestBytes(env);
  const sig = nacl.sign.detached(msg, kp.secretKey);
  if (!ed25519Verify(msg, sig, kp.publicKey) || !nacl.sign.detached.verify(msg, sig, kp.publicKey)) throw new Error('verifiers disagree');
  perSecond(20, () => nacl.sign.detached.verify(msg, sig, kp.publicKey)); // warm-up
  perSecond(500, () => ed25519Verify(msg, sig, kp.publicKey));
  const tweetnacl = perSecond(200, () => nacl.sign.detached.verify(msg, sig, kp.publicKey));
  const nodeCrypto = perSecond(5000, () => ed25519Verify(msg, sig, kp.publicKey));
  const py = `
import sys, time
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
pk = Ed25519PublicKey.from_public_bytes(bytes.fromhex(sys.argv[1])); msg = bytes.fromhex(sys.argv[2]); sig = bytes.fromhex(sys.argv[3])
for _ in range(500): pk.verify(sig, msg)
n = 5000; t = time.perf_counter()
for _ in range(n): pk.verify(sig, msg)
print(round(n / (time.perf_counter() - t)))`;
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const { stdout } = await promisify(execFile)('python3', ['-c', py, hex(kp.publicKey), hex(msg), hex(sig)]);
  const python = Number(stdout.trim());
  return { tweetnaclPerSecond: tweetnacl, nodeCryptoPerSecond: nodeCrypto, pythonCryptographyPerSecond: python, nodeOverTweetnacl: Math.round((nodeCrypto / tweetnacl) * 10) / 10 };
}

interface ChildReport {
  eventLoopDelayMs: { max: number; mean: number; p50: number; p99: number };
  serverCpuMs: number;
  refusals: Record<string, number>;
}

async function flood(mode: 'before' | 'unthrottled' | 'after', forgery: 'fresh' | 'issue'): Promise<Record<string, unknown>> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', `${here}forged-requests-server.ts`, JSON.stringify({ mode })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T>(): Promise<T> => new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
  const { port } = await next<{ port: number }>();
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const def = federationService().Heartbeat!;
  const body = def.requestSerialize({ clientId: 'inst-1', sessionToken: 'x', round: 1 });
  const forged = (): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set(AUTH_METADATA_KEYS.federationId, FED);
    m.set(AUTH_METADATA_KEYS.clientName, 'inst-1');
    m.set(AUTH_METADATA_KEYS.round, '1');
    m.set(AUTH_METADATA_KEYS.bodyHash, hashBody(body));
    m.set(AUTH_METADATA_KEYS.nonce, randomBytes(16).toString('hex'));
    m.set(AUTH_METADATA_KEYS.timestamp, forgery === 'fresh' ? String(Date.now()) : '1000');
    m.set(AUTH_METADATA_KEYS.signature, forgery === 'fresh' ? randomBytes(64) : Buffer.alloc(64));
    return m;
  };
  const call = (method: string, req: Buffer, md: grpc.Metadata): Promise<number> =>
    new Promise((resolve) => client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, req, md, { deadline: Date.now() + 120_000 }, (err) => resolve(err?.code ?? 0)));
  await call('/fedlora.v1.Federation/GetStatus', Buffer.alloc(0), new grpc.Metadata()); // connection up
  child.send({ cmd: 'start' });
  const probes: number[] = [];
  let flooding = true;
  const probing = (async () => {
    while (flooding) {
      const t = performance.now();
      await call('/fedlora.v1.Federation/GetStatus', Buffer.alloc(0), new grpc.Metadata());
      probes.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const t0 = performance.now();
  let sent = 0;
  const codes = new Map<number, number>();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (sent < REQUESTS) {
        sent++;
        const code = await call(HEARTBEAT, body, forged());
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }),
  );
  const wallMs = Math.round(performance.now() - t0);
  flooding = false;
  await probing;
  child.send({ cmd: 'stop' });
  const report = await next<ChildReport>();
  child.send({ cmd: 'exit' });
  client.close();
  await new Promise((r) => child.once('exit', r));
  probes.sort((a, b) => a - b);
  const round1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    mode,
    forgery,
    requests: REQUESTS,
    wallMs,
    statuses: Object.fromEntries([...codes].map(([c, n]) => [grpc.status[c] ?? c, n])),
    ...report,
    honestProbeMs: { count: probes.length, median: round1(probes[Math.floor(probes.length / 2)] ?? NaN), max: round1(probes.at(-1) ?? NaN) },
  };
}

async function main(): Promise<void> {
  log('verify rates ...');
  const verifyRate = await verifyRates();
  const runs: Array<Record<string, unknown>> = [];
  for (const forgery of ['fresh', 'issue'] as const) {
    for (const mode of forgery === 'fresh' ? (['before', 'unthrottled', 'after'] as const) : (['before', 'after'] as const)) {
      log(`flood: ${REQUESTS} ${forgery} forgeries, verifier ${mode} ...`);
      runs.push(await flood(mode, forgery));
    }
  }
  process.stdout.write(`${JSON.stringify({ bench: 'forged-requests', machine: { cpus: cpus().length, loadavg1: Math.round(loadavg()[0]! * 10) / 10, node: process.version }, verifyRate, flood: runs }, null, 2)}\n`);
}

void main();
