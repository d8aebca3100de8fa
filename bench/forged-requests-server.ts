/**
 * Child process of `bench/forged-requests.ts`: a real coordinator gRPC server (127.0.0.1) behind
 * the per-request signature gate, measuring its own event-loop delay (perf_hooks
 * monitorEventLoopDelay) while the parent floods it with forged requests.
 *
 * argv[2] = JSON {mode: 'before' | 'unthrottled' | 'after'}:
 * - after: the shipped RequestVerifier (cheap checks first, node:crypto Ed25519, per-peer throttle);
 * - unthrottled: the shipped verifier with the throttle off (what node:crypto alone buys);
 * - before: the verifier as it was before #16 finding 5 (tweetnacl verify before the timestamp,
 *   method, round and body checks; no throttle), rebuilt here for the comparison only.
 * IPC: sends {port}; on {cmd: 'start'} resets the histogram; on {cmd: 'stop'} replies with it.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import nacl from 'tweetnacl';
import { FederationCoordinator, createStrategy } from '@fedlora/federation';
import { seededRandomBytes } from '@fedlora/tensor';
import {
  MemoryNonceCache,
  RequestVerifier,
  SignatureFailureLimiter,
  canonicalRequestBytes,
  decodePublicKey,
  encodePublicKey,
  envelopeProblem,
  generateIdentity,
  startFederationServer,
  type AuthResult,
  type ExpectedRequest,
  type IdentityDirectory,
  type RequestEnvelope,
} from '@fedlora/transport-grpc';

const FED = 'fed-bench';

/** The pre-fix order: envelope, federation, identity, tweetnacl signature, then time, method/round/body, nonce. */
class BeforeVerifier extends RequestVerifier {
  constructor(private readonly dir: IdentityDirectory) {
    super({ federationId: FED, identities: dir, nonces: new MemoryNonceCache() });
  }

  override verify(env: unknown, signature: unknown, expected: ExpectedRequest = {}): AuthResult {
    if (envelopeProblem(env)) return { ok: false, reason: 'malformed', message: 'malformed' };
    const e = env as RequestEnvelope;
    if (!(signature instanceof Uint8Array) || signature.length !== 64) return { ok: false, reason: 'malformed', message: 'signature' };
    if (e.federationId !== FED) return { ok: false, reason: 'wrong-federation', message: 'federation' };
    const c = this.dir.getClient(e.clientName);
    if (!c) return { ok: false, reason: 'unknown-identity', message: 'unknown' };
    if (!nacl.sign.detached.verify(canonicalRequestBytes(e), signature, decodePublicKey(c.publicKey))) return { ok: false, reason: 'bad-signature', message: 'bad signature' };
    if (Math.abs(Date.now() - e.timestamp) > 300_000) return { ok: false, reason: 'stale', message: 'stale' };
    for (const key of ['method', 'round', 'bodyHash'] as const) {
      if (expected[key] !== undefined && expected[key] !== e[key]) return { ok: false, reason: 'mismatch', message: key };
    }
    return { ok: true, clientName: e.clientName };
  }
}

async function main(): Promise<void> {
  const { mode } = JSON.parse(process.argv[2] ?? '{}') as { mode: 'before' | 'unthrottled' | 'after' };
  const victim = generateIdentity('inst-1', seededRandomBytes('bench-forged'));
  const dir: IdentityDirectory = { getClient: (n) => (n === 'inst-1' ? { publicKey: encodePublicKey(victim.publicKey), status: 'enrolled' } : undefined) };
  const failureLimiter = mode === 'unthrottled' ? new SignatureFailureLimiter({ burst: 1e9 }) : undefined;
  const verifier = mode === 'before' ? new BeforeVerifier(dir) : new RequestVerifier({ federationId: FED, identities: dir, nonces: new MemoryNonceCache(), failureLimiter });
  const coordinator = new FederationCoordinator({
    federationId: FED,
    rounds: 1,
    minClients: 1,
    roundDeadlineMs: 600_000,
    localSteps: 1,
    learningRate: 0.1,
    batchSize: 1,
    strategy: createStrategy({ name: 'fedavg' }),
    initialAdapter: new Map([['w', { shape: [4], data: new Float32Array(4) }]]),
  });
  const refusals = new Map<string, number>();
  const server = await startFederationServer(coordinator, {
    address: '127.0.0.1:0',
    verifier,
    onRefused: (r) => refusals.set(r.reason, (refusals.get(r.reason) ?? 0) + 1),
  });
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let cpu = process.cpuUsage();
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'start') {
      h.reset();
      refusals.clear();
      cpu = process.cpuUsage();
    } else if (m.cmd === 'stop') {
      const used = process.cpuUsage(cpu);
      const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
      process.send!({
        eventLoopDelayMs: { max: ms(h.max), mean: ms(h.mean), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)) },
        serverCpuMs: Math.round((used.user + used.system) / 1000),
        refusals: Object.fromEntries(refusals),
      });
    } else if (m.cmd === 'exit') {
      void server.close().then(() => process.exit(0));
    }
  });
  process.send!({ port: server.port });
}

void main();
