/**
 * Issue 6 proof, "state that survives": a provisioned TLS federation runs as separate processes
 * on 127.0.0.1; the coordinator is SIGKILLed while round 2 is open, restarted with the same
 * config, and the run must still complete with every round committed once, every checkpoint
 * verifying, one signed ledger entry per round chained across the kill (checked with
 * `fedlora audit`), the interrupted round aborted and rerun, the final adapter written and
 * clients exiting 0.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore, sha256Hex } from '@fedlora/store';
import { BIN, FAST_ENV, exitWithin, freePort, killAll, provision, removeFederation, spawnFedlora, isEvent, unlessExited, type FedloraProcess } from './process-harness.js';

const ROUNDS = 3;
const run = promisify(execFile);
const procs: FedloraProcess[] = [];
let fedDir: string | undefined;

afterAll(() => {
  killAll(procs);
  if (fedDir) removeFederation(fedDir);
});

describe('kill -9 of the coordinator during a round, then restart (separate processes, TLS)', () => {
  it('resumes after the last committed round and completes the run with every checkpoint intact', async () => {
    const port = await freePort();
    fedDir = await provision({ clients: 2, rounds: ROUNDS, port });
    const env = { ...FAST_ENV };
    // Institution-level DP on the coordinator, so every round also writes a signed ledger entry.
    const coordEnv = { ...env, FEDLORA_PRIVACY_MODE: 'central', FEDLORA_PRIVACY_CLIP_NORM: '1', FEDLORA_PRIVACY_NOISE_MULTIPLIER: '0.5', FEDLORA_PRIVACY_DELTA: '1e-5' };
    const coordArgs = ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'];

    // Act 1: a normal start; kill -9 as soon as round 1 is committed and round 2 has started.
    const first = spawnFedlora('coordinator#1', coordArgs, coordEnv);
    procs.push(first);
    await first.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const clients = ['inst-1', 'inst-2'].map((n) => spawnFedlora(n, ['client', '--config', join(fedDir!, 'clients', `${n}.yaml`)], env));
    procs.push(...clients);
    await unlessExited(first.waitFor(isEvent('round.completed', 1), 600_000, 'round.completed round 1'), clients);
    await unlessExited(first.waitFor(isEvent('round.started', 2), 600_000, 'round.started round 2'), clients);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    // Act 2: restart with the same config while the clients keep retrying.
    const second = spawnFedlora('coordinator#2', coordArgs, coordEnv);
    procs.push(second);
    const code = await exitWithin(second, 75_000);
    expect(code, second.tail()).toBe(0);
    for (const c of clients) expect(await exitWithin(c, 20_000), c.tail()).toBe(0);

    // The restarted coordinator resumed: it did not rerun round 1, aborted the open round 2, and reran it.
    const started = second.events.filter(isEvent('round.started')).map((e) => e.round);
    expect(started).not.toContain(1);
    expect(started).toContain(2);
    const completed = second.events.filter(isEvent('round.completed')).map((e) => e.round);
    expect(completed).toEqual([2, 3]);
    const summary = JSON.parse(second.stdout()) as { state: string };
    expect(summary.state).toBe('finished');

    // The store: every round committed exactly once, each with a verifying checkpoint; round 2's first attempt aborted.
    const store = openSqliteStore(join(fedDir, 'data', 'coordinator', 'fedlora.db'));
    try {
      const rounds = store.listRounds();
      for (let r = 1; r <= ROUNDS; r++) {
        const committed = rounds.filter((x) => x.round === r && x.state === 'committed');
        expect(committed, `round ${r}: ${JSON.stringify(rounds)}`).toHaveLength(1);
        const { bytes, sha256 } = store.loadCheckpoint(r);
        expect(sha256Hex(bytes)).toBe(sha256);
      }
      const round2 = rounds.filter((x) => x.round === 2);
      expect(round2.map((x) => x.state)).toEqual(['aborted', 'committed']);
      expect(round2[1]!.attempt).toBeGreaterThan(round2[0]!.attempt);
      expect(round2[0]!.reason ?? '').not.toBe('');
      expect(rounds.filter((x) => x.round === 1)).toHaveLength(1);
      const checkpoints = store.listCheckpoints();
      expect(checkpoints.map((c) => c.round)).toEqual([1, 2, 3]);
      expect(store.getFederation()?.state).toBe('finished');
      // One signed ledger entry per committed round, chained across the kill; the interrupted attempt released nothing.
      const ledger = store.listLedger();
      const entries = ledger.map((l) => JSON.parse(l.line) as { kind: string; round: number; seq: number });
      expect(entries.map((e) => [e.kind, e.round, e.seq])).toEqual([
        ['round', 1, 0],
        ['round', 2, 1],
        ['round', 3, 2],
      ]);
      const file = readFileSync(join(fedDir, 'data', 'coordinator', 'federation-ledger.jsonl'), 'utf8').trim().split('\n');
      expect(file).toEqual(ledger.map((l) => l.line));
    } finally {
      store.close();
    }
    expect(existsSync(join(fedDir, 'data', 'coordinator', 'final-adapter', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(fedDir, 'data', 'coordinator', 'final-adapter', 'adapter_config.json'))).toBe(true);

    // The auditor's tool verifies the ledger file (chain, signatures, recomputed epsilons).
    const audit = await run(process.execPath, [BIN, 'audit', join(fedDir, 'data', 'coordinator', 'federation-ledger.jsonl'), '--trusted-keys', join(fedDir, 'trusted-keys.json'), '--json'], { maxBuffer: 8 << 20 });
    const report = JSON.parse(audit.stdout) as { valid: boolean; entries: number; federation: { valid: boolean; publicKey: string } };
    expect(report.valid).toBe(true);
    expect(report.entries).toBe(ROUNDS);
    const coordinatorKey = JSON.parse(readFileSync(join(fedDir, 'identities', 'coordinator.key.json'), 'utf8')) as { publicKey: string };
    expect(report.federation.publicKey).toBe(Buffer.from(coordinatorKey.publicKey, 'base64').toString('hex'));
  }, 1_200_000);
});
