/**
 * Issue 11 proof, "every institution comes back": a provisioned TLS federation of three
 * institutions (minClients 2, as provisioned) runs as separate processes.
 *
 * 1. The coordinator's node process is SIGKILLed once round 2 is committed (its pid is checked
 *    gone) and restarted with the same config. Every institution registers again, trains in
 *    rounds 3 and 4, learns that the federation finished and exits 0. (Before the fix, an
 *    institution whose first request reached the new coordinator was refused, backed off 30 s
 *    and missed rounds; with --exit-when-done it then retried a coordinator that was gone.)
 * 2. An institution's node process is SIGKILLed in the middle of its round-2 upload (its bytes
 *    pass through a TCP proxy that stops forwarding half-way, then the kill) and restarted. It
 *    trains round 2 again under its new session, and every institution trains rounds 2-4.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tcpProxy, type TcpProxy } from '@fedlora/transport-grpc/testing';
import { FAST_ENV, exitWithin, freePort, killAll, provision, removeFederation, spawnFedlora, isEvent, unlessExited, type FedloraProcess, type LogEvent } from './process-harness.js';

const ROUNDS = 4;
/** FAST_ENV with a round deadline no loaded machine misses (the assertions count participants per round). */
const ENV = { ...FAST_ENV, FEDLORA_ROUNDS_DEADLINE_SECONDS: '300' };
const NAMES = ['inst-1', 'inst-2', 'inst-3'];
const procs: FedloraProcess[] = [];
const feds: string[] = [];
const proxies: TcpProxy[] = [];

afterAll(() => {
  killAll(procs);
  for (const p of proxies) p.close();
  for (const d of feds) removeFederation(d);
});

/** True while a process with this pid exists (signal 0 probes without signalling). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILLs the node process itself and checks that its pid is gone. */
async function killNode(p: FedloraProcess): Promise<void> {
  const pid = p.child.pid!;
  p.child.kill('SIGKILL');
  expect(await p.exited).toBe('SIGKILL');
  expect(alive(pid), `${p.name}: pid ${pid} still exists after SIGKILL`).toBe(false);
}

const roundsOf = (events: LogEvent[], event: string): unknown[] => events.filter(isEvent(event)).map((e) => e.round);

async function startFederation(): Promise<{ fedDir: string; port: number; coordArgs: string[] }> {
  const port = await freePort();
  const fedDir = await provision({ clients: NAMES.length, rounds: ROUNDS, port });
  feds.push(fedDir);
  return { fedDir, port, coordArgs: ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'] };
}

const clientArgs = (fedDir: string, name: string, file = `${name}.yaml`): string[] => ['client', '--config', join(fedDir, 'clients', file)];

describe('kill -9 between rounds and mid-upload, then restart (3 institutions, separate processes, TLS)', () => {
  it('brings every institution back into rounds 3 and 4 after a coordinator kill, and each exits 0 when the run finishes', async () => {
    const { fedDir, coordArgs } = await startFederation();
    const first = spawnFedlora('coordinator#1', coordArgs, ENV);
    procs.push(first);
    await first.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const clients = NAMES.map((n) => spawnFedlora(n, clientArgs(fedDir, n), ENV));
    procs.push(...clients);
    await unlessExited(first.waitFor(isEvent('round.completed', 2), 900_000, 'round.completed round 2'), clients);
    await killNode(first);
    // Precondition: all three were in round 2 (minClients 2 lets round 1 start before a slow starter registers).
    expect(first.events.filter(isEvent('round.started', 2)).map((e) => e.cohort), first.tail()).toEqual([3]);

    const second = spawnFedlora('coordinator#2', coordArgs, ENV);
    procs.push(second);
    expect(await exitWithin(second, 600_000), second.tail()).toBe(0);
    for (const c of clients) expect(await exitWithin(c, 60_000), c.tail()).toBe(0);

    // Every institution is in rounds 3 and 4: the coordinator summed three updates each time...
    const completed = second.events.filter(isEvent('round.completed'));
    expect(completed.map((e) => [e.round, e.participants]), second.tail()).toEqual([
      [3, 3],
      [4, 3],
    ]);
    // ...and each institution trained and sent both, then was told the run finished.
    for (const c of clients) {
      const sent = roundsOf(c.events, 'update.sent');
      expect(sent.filter((r) => (r as number) >= 3), c.tail()).toEqual([3, 4]);
      expect(c.events.some(isEvent('client.finished')), c.tail()).toBe(true);
      expect(c.events.some(isEvent('client.reregistering')), c.tail()).toBe(true);
    }
  }, 2_400_000);

  it('lets an institution killed in the middle of an upload rejoin the same round, and every institution trains rounds 2-4', async () => {
    const { fedDir, port, coordArgs } = await startFederation();
    // Every round needs all three, so the restarted institution is waited for (the deadline outlasts its restart).
    const env = { ...ENV, FEDLORA_ROUNDS_MIN_CLIENTS: '3' };
    // inst-3 reaches the coordinator through a proxy that, once armed, stops forwarding its bytes half-way through an upload.
    const victim = 'inst-3';
    const ADAPTER_BYTES = 24_576 * 4; // the tiny model's default LoRA (c_attn + attn.c_proj, r 8, 4 layers), float32
    const armed = { on: false, bytes: 0, tripped: false, onTrip: () => undefined as void };
    const proxy = await tcpProxy(port, {
      up: (data) => {
        if (!armed.on) return data;
        if (armed.tripped) return Buffer.alloc(0);
        armed.bytes += data.length;
        if (armed.bytes < ADAPTER_BYTES / 3) return data;
        armed.tripped = true;
        armed.onTrip();
        return Buffer.alloc(0);
      },
    });
    proxies.push(proxy);
    const original = readFileSync(join(fedDir, 'clients', `${victim}.yaml`), 'utf8');
    writeFileSync(join(fedDir, 'clients', `${victim}-proxied.yaml`), original.replace(`coordinator: 127.0.0.1:${port}`, `coordinator: 127.0.0.1:${proxy.port}`));

    const coordinator = spawnFedlora('coordinator', coordArgs, env);
    procs.push(coordinator);
    await coordinator.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const others = NAMES.filter((n) => n !== victim).map((n) => spawnFedlora(n, clientArgs(fedDir, n), env));
    const first = spawnFedlora(`${victim}#1`, clientArgs(fedDir, victim, `${victim}-proxied.yaml`), env);
    procs.push(...others, first);
    await unlessExited(coordinator.waitFor(isEvent('round.completed', 1), 900_000, 'round.completed round 1'), [...others, first]);
    // Arm as round 2 opens: from here inst-3's upstream bytes are a few small requests, then its upload.
    const tripped = new Promise<void>((resolve) => (armed.onTrip = resolve));
    await unlessExited(coordinator.waitFor(isEvent('round.started', 2), 600_000, 'round.started round 2'), [first]);
    armed.on = true;
    await unlessExited(tripped, [first]);
    await killNode(first);
    // It was mid-upload: it had not logged the upload as sent, and the coordinator had not received it.
    expect(roundsOf(first.events, 'update.sent')).toEqual([1]);
    expect(coordinator.events.filter((e) => e.event === 'update.received' && e.round === 2 && e.client === victim)).toEqual([]);

    const second = spawnFedlora(`${victim}#2`, clientArgs(fedDir, victim), env);
    procs.push(second);
    expect(await exitWithin(coordinator, 900_000), coordinator.tail()).toBe(0);
    for (const c of [...others, second]) expect(await exitWithin(c, 60_000), c.tail()).toBe(0);

    expect(coordinator.events.filter(isEvent('round.completed')).map((e) => [e.round, e.participants]), coordinator.tail()).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
      [4, 3],
    ]);
    expect(roundsOf(second.events, 'update.sent'), second.tail()).toEqual([2, 3, 4]);
    for (const c of others) expect(roundsOf(c.events, 'update.sent'), c.tail()).toEqual([1, 2, 3, 4]);
    for (const c of [...others, second]) expect(c.events.some(isEvent('client.finished')), c.tail()).toBe(true);
  }, 2_400_000);
});
