/**
 * Issue 6 proof, "a round interrupted mid-secure-aggregation is aborted and rerun with fresh
 * keys": three institutions run SecAgg+ with distributed DP as separate processes over TLS; the
 * coordinator is SIGKILLed while round 2's secure aggregation is under way, restarted, and the
 * run completes: round 2's first attempt is aborted, its rerun has a fresh nonce (new keys are
 * bound to it), every round is committed once with a verifying checkpoint and one ledger entry,
 * and every client exits 0 having finished each round exactly once.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore, sha256Hex } from '@fedlora/store';
import { FAST_ENV, exitWithin, freePort, killAll, provision, removeFederation, spawnFedlora, isEvent, unlessExited, type FedloraProcess } from './process-harness.js';

const ROUNDS = 2;
const NAMES = ['inst-1', 'inst-2', 'inst-3'];
const procs: FedloraProcess[] = [];
let fedDir: string | undefined;

afterAll(() => {
  killAll(procs);
  if (fedDir) removeFederation(fedDir);
});

describe('kill -9 of the coordinator during secure aggregation, then restart (3 processes + coordinator, TLS)', () => {
  it('aborts the interrupted SecAgg+ round, reruns it under a fresh nonce and completes the run', async () => {
    const port = await freePort();
    fedDir = await provision({ clients: NAMES.length, rounds: ROUNDS, port });
    // SecAgg+ needs at least 3 clients in a cohort: do not open a round with fewer.
    const coordEnv = {
      ...FAST_ENV,
      FEDLORA_ROUNDS_MIN_CLIENTS: '3',
      FEDLORA_SECAGG_ENABLED: 'true',
      FEDLORA_PRIVACY_MODE: 'distributed',
      FEDLORA_PRIVACY_CLIP_NORM: '1',
      FEDLORA_PRIVACY_NOISE_MULTIPLIER: '0.5',
      FEDLORA_PRIVACY_DELTA: '1e-5',
    };
    const coordArgs = ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'];

    const first = spawnFedlora('coordinator#1', coordArgs, coordEnv);
    procs.push(first);
    await first.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const clients = NAMES.map((n) => spawnFedlora(n, ['client', '--config', join(fedDir!, 'clients', `${n}.yaml`)], { ...FAST_ENV }));
    procs.push(...clients);
    await unlessExited(first.waitFor(isEvent('round.completed', 1), 600_000, 'round.completed round 1'), clients);
    await unlessExited(first.waitFor(isEvent('round.started', 2), 600_000, 'round.started round 2'), clients);
    // The clients advertise keys and exchange shares as soon as they see the plan; give them a moment to be inside the protocol.
    await sleep(400);
    expect(clients.some((c) => c.events.some(isEvent('secagg.ended', 2))), 'round 2 ended before the kill').toBe(false);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    const second = spawnFedlora('coordinator#2', coordArgs, coordEnv);
    procs.push(second);
    expect(await exitWithin(second, 70_000), second.tail()).toBe(0);
    for (const c of clients) expect(await exitWithin(c, 20_000), c.tail()).toBe(0);

    expect(second.events.filter(isEvent('round.aborted', 2)).map((e) => e.reason)).toEqual(['coordinator restarted while the round was open']);
    expect(second.events.filter(isEvent('round.completed')).map((e) => e.round)).toEqual([2]);
    for (const c of clients) {
      const finished = c.events.filter((e) => e.event === 'secagg.ended' && e.end === 'finished').map((e) => e.round);
      expect(finished, c.tail()).toEqual([1, 2]);
    }

    const store = openSqliteStore(join(fedDir, 'data', 'coordinator', 'fedlora.db'));
    try {
      const rounds = store.listRounds();
      const round2 = rounds.filter((r) => r.round === 2);
      expect(round2.map((r) => r.state)).toEqual(['aborted', 'committed']);
      const nonces = round2.map((r) => (r.plan as { nonce?: string }).nonce);
      expect(nonces[0]).toBeTruthy();
      expect(nonces[1]).not.toBe(nonces[0]);
      for (let r = 1; r <= ROUNDS; r++) {
        expect(rounds.filter((x) => x.round === r && x.state === 'committed')).toHaveLength(1);
        const { bytes, sha256 } = store.loadCheckpoint(r);
        expect(sha256Hex(bytes)).toBe(sha256);
      }
      const entries = store.listLedger().map((l) => JSON.parse(l.line) as { kind: string; round: number; params?: { mode?: string; survivors?: number } });
      expect(entries.filter((e) => e.kind === 'round').map((e) => [e.round, e.params?.mode, e.params?.survivors])).toEqual([
        [1, 'distributed', 3],
        [2, 'distributed', 3],
      ]);
    } finally {
      store.close();
    }
  }, 1_200_000);
});
