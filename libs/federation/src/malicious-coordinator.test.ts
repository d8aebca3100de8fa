/**
 * Issue 16 finding 1, adversarial: a hostile coordinator that chooses the SecAgg+ roster. It
 * enrols two identities whose keys it generated itself and opens a round whose cohort is the
 * victim and those two; its "clients" send zero updates, so the securely aggregated mean times 3
 * is the victim's update. Before the fix the victim took its peers' keys from the plan and the
 * coordinator recovered the victim's vector exactly; now the victim checks the roster against the
 * member list the federation authority signed and declines, so nothing of its update leaves.
 */
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '@fedlora/secagg';
import { seededRandomBytes } from '@fedlora/tensor';
import type { EventLogger } from './clock.js';
import { runClient } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { signMemberList, verifyMemberList } from './member-list.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

const rng = seededRandomBytes('malicious-coordinator-test');
const VICTIM_UPDATE = 0.37;

/** The real federation: three institutions whose keys the federation authority signed. */
const authority = generateIdentity(rng);
const honest = new Map(['victim', 'hospital-b', 'hospital-c'].map((n) => [n, generateIdentity(rng)]));
const memberList = signMemberList(
  { federationId: 'fed', version: 1, issuedAt: '2026-12-05T00:00:00.000Z', members: [...honest].map(([name, id]) => ({ name, publicKey: Buffer.from(id.publicKey).toString('base64') })) },
  authority.secretKey,
);
const members = verifyMemberList(memberList, authority.publicKey, 'fed');

/** Identities the coordinator made for itself (it holds their secret keys). */
const sybils = new Map(['sybil-1', 'sybil-2'].map((n) => [n, generateIdentity(rng)]));

function capture(): EventLogger & { events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const push = (e: Record<string, unknown>) => void events.push(e);
  return { events, info: push, warn: push, error: push };
}

describe('a coordinator that rosters the victim with two identities it controls', () => {
  it('learns nothing of the victim\'s update: the victim declines a roster naming keys outside its member list', async () => {
    const keyOf = (n: string) => (honest.get(n) ?? sybils.get(n))?.publicKey;
    const coordinator = testCoordinator({
      federationId: 'fed',
      minClients: 3,
      maxAttemptsPerRound: 1,
      minAvailableClients: 3,
      roundDeadlineMs: 10_000,
      learningRate: 0,
      rng,
      // Full SecAgg over the three (k = 2, t = 2): the parameters an honest coordinator would choose.
      secureAggregation: { identityOf: keyOf, clipNorm: 10, stageTimeoutMs: 1500, livenessMs: 1500, rng },
    });
    const run = coordinator.run();
    const stop = new AbortController();
    const victimLog = capture();
    const victim = runClient({
      name: 'victim',
      connection: inProcessConnection(coordinator),
      trainer: constantTrainer(VICTIM_UPDATE, 1),
      pollMs: 100,
      heartbeatMs: 50,
      signal: stop.signal,
      logger: victimLog,
      secure: { identitySecretKey: honest.get('victim')!.secretKey, rng, members },
    });
    // The coordinator's own clients run the unmodified protocol with a member list of their making.
    const attackerMembers = new Map([...sybils, ['victim', honest.get('victim')!] as const].map(([n, id]) => [n, id.publicKey]));
    const attackers = [...sybils].map(([name, id]) =>
      runClient({
        name,
        connection: inProcessConnection(coordinator),
        trainer: constantTrainer(0, 1),
        pollMs: 100,
        heartbeatMs: 50,
        signal: stop.signal,
        secure: { identitySecretKey: id.secretKey, rng, members: attackerMembers },
      }),
    );
    await Promise.allSettled([run]);
    stop.abort();
    coordinator.stop();
    await Promise.allSettled([victim, ...attackers]);

    // What the attack reads: 3 x (new adapter - old adapter) is the victim's update when it is in the sum.
    const a = coordinator.adapter.get('lora_A')!.data;
    const recovered = Array.from(a, (v, i) => 3 * (v - i));
    expect(recovered.some((v) => Math.abs(v - VICTIM_UPDATE) < 1e-3), `the coordinator recovered the victim's update: ${recovered.join(', ')}`).toBe(false);
    expect(coordinator.rounds.filter((r) => r.status === 'completed').flatMap((r) => r.participantNames)).not.toContain('victim');
    const declined = victimLog.events.find((e) => e.event === 'round.refused');
    expect(declined?.reason).toMatch(/sybil-1.*not in the federation's member list/);
  }, 60_000);
});
