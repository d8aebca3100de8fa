/**
 * `fedlora client --fleet FILE`: a provisioned TLS federation of four institutions run by two
 * fleet processes (two institutions each, separate OS processes, `node BIN` directly) against a
 * real `fedlora coordinator` process on 127.0.0.1. Each institution is its own node: its own
 * signed requests, TLS certificate, member-list check and ledger directory.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { FAST_ENV, exitWithin, freePort, isEvent, killAll, provision, removeFederation, spawnFedlora, unlessExited, type FedloraProcess } from './process-harness.js';

const procs: FedloraProcess[] = [];
const feds: string[] = [];

afterAll(() => {
  killAll(procs);
  for (const d of feds) removeFederation(d);
});

describe('fedlora client --fleet (two fleet processes, four institutions, one coordinator)', () => {
  it('trains every institution of both fleets in every round and each fleet exits 0 with a per-institution summary', async () => {
    const port = await freePort();
    const fedDir = await provision({ clients: 4, rounds: 2, port });
    feds.push(fedDir);
    // Fleet A names two provisioned client configs; fleet B lays two inline entries over shared defaults.
    writeFileSync(join(fedDir, 'fleet-a.yaml'), stringify({ institutions: [{ config: 'clients/inst-1.yaml' }, { config: 'clients/inst-2.yaml' }] }));
    const inline = (n: string) => ({
      name: n,
      identity: { secretKeyFile: `identities/${n}.key.json` },
      tls: { cert: `pki/clients/${n}.crt`, key: `pki/clients/${n}.key` },
      dataDir: `data/${n}`,
      data: { path: `data/${n}/train.txt` },
    });
    const shared = parse(readFileSync(join(fedDir, 'clients', 'inst-3.yaml'), 'utf8')) as Record<string, unknown>;
    const defaults = { federationId: shared.federationId, coordinator: shared.coordinator, tls: { ca: 'pki/ca.crt', serverName: 'localhost' }, membership: { file: 'members.json', authorityKey: (shared.membership as { authorityKey: string }).authorityKey } };
    writeFileSync(join(fedDir, 'fleet-b.yaml'), stringify({ defaults, institutions: [inline('inst-3'), inline('inst-4')] }));
    // Every institution must be in each round: the coordinator waits for all four.
    const env = { ...FAST_ENV, FEDLORA_ROUNDS_DEADLINE_SECONDS: '300', FEDLORA_ROUNDS_MIN_CLIENTS: '4' };

    const coordinator = spawnFedlora('coordinator', ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'], env);
    procs.push(coordinator);
    await coordinator.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const fleets = ['a', 'b'].map((f) => spawnFedlora(`fleet-${f}`, ['client', '--fleet', join(fedDir, `fleet-${f}.yaml`), '--json'], env));
    procs.push(...fleets);

    await unlessExited(coordinator.waitFor(isEvent('round.completed', 2), 900_000, 'round.completed round 2'), fleets);
    expect(await exitWithin(coordinator, 120_000), coordinator.tail()).toBe(0);
    for (const f of fleets) expect(await exitWithin(f, 120_000), f.tail()).toBe(0);

    // The coordinator saw four institutions in each round.
    for (const round of [1, 2]) expect(coordinator.events.filter(isEvent('round.started', round)).map((e) => e.cohort), coordinator.tail()).toEqual([4]);
    // Each fleet reports its own two institutions, each trained in both rounds.
    const summaries = fleets.map((f) => JSON.parse(f.stdout()) as { institutions: Array<{ client: string; roundsTrained: number[]; stopped?: string }> });
    expect(summaries[0]!.institutions).toEqual([
      { client: 'inst-1', roundsTrained: [1, 2] },
      { client: 'inst-2', roundsTrained: [1, 2] },
    ]);
    expect(summaries[1]!.institutions).toEqual([
      { client: 'inst-3', roundsTrained: [1, 2] },
      { client: 'inst-4', roundsTrained: [1, 2] },
    ]);
    // Each institution logs as itself (its own logger), from the fleet process that runs it.
    expect(new Set(fleets[1]!.events.filter(isEvent('update.sent')).map((e) => e.client))).toEqual(new Set(['inst-3', 'inst-4']));
    expect(readdirSync(join(fedDir, 'data'))).toEqual(expect.arrayContaining(['inst-1', 'inst-2', 'inst-3', 'inst-4']));
  }, 1_200_000);
});
