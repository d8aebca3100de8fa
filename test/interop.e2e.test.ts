/**
 * Issue 6 proof, interop: an independent client written in Python (Debian's python3-grpcio and
 * python3-protobuf, message classes built from protos/fedlora/v1/federation.proto at run time,
 * see test/interop/) drives a real coordinator process over mTLS on 127.0.0.1: it registers,
 * polls GetTask, downloads and hash-checks the adapter stream, uploads a zero update, and sees
 * every round complete. Its request signatures must verify with the TypeScript verifier.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '@fedlora/store';
import { decodePublicKey, verifyRequestSignature, type RequestEnvelope } from '@fedlora/transport-grpc';
import { FAST_ENV, exitWithin, freePort, killAll, provision, removeFederation, spawnFedlora, type FedloraProcess } from './process-harness.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const CLIENT_PY = fileURLToPath(new URL('./interop/client.py', import.meta.url));
const ED25519_PY = fileURLToPath(new URL('./interop/ed25519.py', import.meta.url));
const PROTO = fileURLToPath(new URL('../protos/fedlora/v1/federation.proto', import.meta.url));
const ROUNDS = 2;

interface InteropResult {
  client: string;
  signer: string;
  finished: boolean;
  rounds: Array<{ round: number; completed: string; adapterSha256: string; tensors: number; downloadChunks: number; bytes: number; heartbeatRoundOpen: boolean; uploadMessage: string; resumedAt: number }>;
  status: { state: string; totalRounds: number; rounds: Array<{ round: number; status: string; participantNames: string[]; adapterSha256: string | null }> };
}

/** Fails (never skips) when the Debian packages are missing, saying what to install. */
async function requirePythonGrpc(): Promise<void> {
  try {
    await run(PYTHON, ['-c', 'import grpc, google.protobuf']);
  } catch (err) {
    throw new Error(
      `the interop test needs Python gRPC from Debian: run \`apt-get install python3-grpcio\` (it brings python3-protobuf); ${PYTHON} -c "import grpc" failed: ${(err as { stderr?: string }).stderr ?? String(err)}`,
    );
  }
}

const procs: FedloraProcess[] = [];
let fedDir = '';
let federationId = '';
let port = 0;

const pyArgs = (extra: string[] = []): string[] => [
  CLIENT_PY,
  '--address', `127.0.0.1:${port}`,
  '--federation', federationId,
  '--proto', PROTO,
  '--identity', join(fedDir, 'identities', 'inst-1.key.json'),
  '--ca', join(fedDir, 'pki', 'ca.crt'),
  '--cert', join(fedDir, 'pki', 'clients', 'inst-1.crt'),
  '--key', join(fedDir, 'pki', 'clients', 'inst-1.key'),
  ...extra,
];

beforeAll(async () => {
  await requirePythonGrpc();
  port = await freePort();
  fedDir = await provision({ clients: 1, rounds: ROUNDS, port });
  federationId = /^federationId: (\S+)$/m.exec(readFileSync(join(fedDir, 'coordinator.yaml'), 'utf8'))![1]!;
}, 1_200_000);

afterAll(() => {
  killAll(procs);
  if (fedDir) removeFederation(fedDir);
});

describe('a Python grpcio client built only from the .proto file', () => {
  it('signs request envelopes that the TypeScript verifier accepts (cryptography and pure-Python Ed25519 agree with RFC 8032)', async () => {
    const selfTest = await run(PYTHON, [ED25519_PY]);
    expect(selfTest.stdout).toMatch(/RFC 8032 vectors pass/);
    const identity = JSON.parse(readFileSync(join(fedDir, 'identities', 'inst-1.key.json'), 'utf8')) as { publicKey: string };
    for (const extra of [[], ['--pure-ed25519']]) {
      const { stdout } = await run(PYTHON, pyArgs(['--sign-only', 'GetTask', ...extra]));
      const { envelope, signature } = JSON.parse(stdout) as { envelope: RequestEnvelope; signature: string };
      expect(envelope.method).toBe('/fedlora.v1.Federation/GetTask');
      const sig = new Uint8Array(Buffer.from(signature, 'hex'));
      expect(verifyRequestSignature(envelope, sig, decodePublicKey(identity.publicKey))).toBe(true);
      expect(verifyRequestSignature({ ...envelope, round: envelope.round + 1 }, sig, decodePublicKey(identity.publicKey))).toBe(false);
    }
  });

  it('is refused (UNAUTHENTICATED, audited) when it signs with a key that is not the enrolled one, even with a valid mTLS certificate', async () => {
    const coordinator = spawnFedlora('coordinator', ['coordinator', '--config', join(fedDir, 'coordinator.yaml')], { ...FAST_ENV });
    procs.push(coordinator);
    try {
      await coordinator.waitFor((e) => e.event === 'coordinator.listening', 180_000, 'coordinator.listening');
      const forged = join(fedDir, 'forged-inst-1.key.json');
      const real = JSON.parse(readFileSync(join(fedDir, 'identities', 'inst-1.key.json'), 'utf8')) as Record<string, string>;
      writeFileSync(forged, JSON.stringify({ ...real, seed: Buffer.alloc(32, 7).toString('base64') }));
      const args = pyArgs(['--timeout', '10']).map((a) => (a.endsWith('inst-1.key.json') ? forged : a));
      const err = (await run(PYTHON, args, { timeout: 30_000 }).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: number; stderr?: string } | undefined;
      expect(err, 'the forged client was served').toBeDefined();
      expect(err!.code).toBe(2);
      expect(err!.stderr).toMatch(/UNAUTHENTICATED/);
      expect(err!.stderr).toMatch(/signature/);
    } finally {
      coordinator.child.kill('SIGTERM');
      await exitWithin(coordinator, 20_000);
    }
    const store = openSqliteStore(join(fedDir, 'data', 'coordinator', 'fedlora.db'));
    try {
      const refusals = store.listAudit({ client: 'inst-1' });
      expect(refusals.length, JSON.stringify(store.listAudit({ limit: 5 }))).toBeGreaterThan(0);
      expect(store.listRounds()).toEqual([]);
    } finally {
      store.close();
    }
  }, 1_200_000);

  it('registers, downloads, uploads zero updates and sees every round complete against a coordinator process over mTLS', async () => {
    const coordinator = spawnFedlora('coordinator', ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'], { ...FAST_ENV });
    procs.push(coordinator);
    await coordinator.waitFor((e) => e.event === 'coordinator.listening', 180_000, 'coordinator.listening');

    const py = await run(PYTHON, pyArgs(['--timeout', '60']), { timeout: 75_000 }).catch((err: { stdout?: string; stderr?: string; code?: unknown }) => {
      throw new Error(`python interop client failed (exit ${String(err.code)}): ${err.stderr ?? ''}\n${coordinator.tail()}`);
    });
    const result = JSON.parse(py.stdout) as InteropResult;
    expect(await exitWithin(coordinator, 30_000), coordinator.tail()).toBe(0);

    // The Python client took part in every round and checked each downloaded adapter's SHA-256 against the plan.
    expect(result.finished).toBe(true);
    expect(result.rounds.map((r) => r.round)).toEqual([1, 2]);
    for (const r of result.rounds) {
      expect(r.completed).toBe('completed');
      expect(r.tensors).toBeGreaterThan(0);
      expect(r.bytes).toBeGreaterThan(0);
      expect(r.heartbeatRoundOpen).toBe(true);
      expect(r.uploadMessage).toMatch(/accepted/);
      // Round 2 resumed a resumable upload (per-chunk and whole-tensor SHA-256) after 2 chunks of 64 KiB or less.
      if (r.round === 2) expect(r.resumedAt).toBeGreaterThan(0);
    }
    // A zero update leaves FedAvg's adapter unchanged: round 2 starts from round 1's adapter, bit for bit.
    expect(result.rounds[1]!.adapterSha256).toBe(result.rounds[0]!.adapterSha256);
    expect(result.status.state).toBe('finished');
    expect(result.status.rounds.map((r) => [r.round, r.status, r.participantNames])).toEqual([
      [1, 'completed', ['inst-1']],
      [2, 'completed', ['inst-1']],
    ]);
    expect(result.status.rounds[1]!.adapterSha256).toBe(result.rounds[0]!.adapterSha256);

    // The coordinator saw the Python client as an ordinary participant and committed both rounds.
    const received = coordinator.events.filter((e) => e.event === 'update.received').map((e) => [e.round, e.client]);
    expect(received).toEqual([
      [1, 'inst-1'],
      [2, 'inst-1'],
    ]);
    const store = openSqliteStore(join(fedDir, 'data', 'coordinator', 'fedlora.db'));
    try {
      expect(store.listRounds().map((r) => [r.round, r.state])).toEqual([
        [1, 'committed'],
        [2, 'committed'],
      ]);
    } finally {
      store.close();
    }
  }, 1_200_000);
});
