/**
 * Issue 16 finding 1, the documented production flow over real processes: three institutions run
 * `fedlora client-init` on "their" machines (separate directories), the operator runs `fedlora
 * provision --project --requests` with only their request files, each institution copies the
 * returned bundle next to the keys it kept, and a SecAgg+ round over mTLS completes. No file the
 * operator wrote holds an institution's private key; each client checks the roster against the
 * member list the federation authority signed.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, FAST_ENV, exitWithin, freePort, isEvent, killAll, spawnFedlora, unlessExited, type FedloraProcess } from './process-harness.js';

const run = promisify(execFile);
const NAMES = ['hospital-a', 'hospital-b', 'hospital-c'];
const procs: FedloraProcess[] = [];
const root = mkdtempSync(join(tmpdir(), 'fedlora-enrol-'));

afterAll(() => {
  killAll(procs);
  rmSync(root, { recursive: true, force: true });
});

const fedlora = async (args: string[]) => JSON.parse((await run(process.execPath, [BIN, ...args, '--json'], { maxBuffer: 4 << 20 })).stdout) as Record<string, unknown>;
const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));

/** Some training text (about 300 short sentences) for an institution. */
function text(seed: number): string {
  const words = ['the', 'patient', 'was', 'seen', 'in', 'clinic', 'today', 'with', 'mild', 'symptoms', 'and', 'a', 'follow', 'up', 'is', 'planned'];
  return Array.from({ length: 300 }, (_, i) => Array.from({ length: 8 }, (_, j) => words[(i * 7 + j * 3 + seed) % words.length]).join(' ') + '.').join('\n') + '\n';
}

describe('production enrolment: institutions keep their keys, provisioning works from requests', () => {
  it('client-init x3, provision --requests, then a SecAgg+ round over mTLS completes', async () => {
    const port = await freePort();
    const requests = join(root, 'requests');
    mkdirSync(requests);
    const homes = new Map<string, string>();
    for (const name of NAMES) {
      const home = join(root, 'homes', name);
      const m = await fedlora(['client-init', '--name', name, '--federation-id', 'onc', '--out', home]);
      expect(m.fingerprintSha256).toMatch(/^[0-9a-f]{64}$/);
      copyFileSync(join(home, String(m.request)), join(requests, String(m.request)));
      homes.set(name, home);
    }
    const project = [
      'federationId: onc',
      `coordinator: { host: 127.0.0.1, port: ${port}, listen: "127.0.0.1:${port}", altNames: [localhost] }`,
      'institutions:',
      ...NAMES.map((n) => `  - name: ${n}`),
      'rounds: { total: 1, minClients: 3 }',
    ].join('\n');
    writeFileSync(join(root, 'federation.yaml'), `${project}\n`);
    const fed = join(root, 'fed');
    const manifest = (await fedlora(['provision', '--project', join(root, 'federation.yaml'), '--requests', requests, '--out', fed])) as { clients: Array<{ name: string; ship: string[]; requestFingerprint: string }> };

    // The operator's directory holds none of the institutions' private keys.
    const secrets = NAMES.flatMap((n) => [JSON.parse(readFileSync(join(homes.get(n)!, 'identity.key.json'), 'utf8')).seed as string, readFileSync(join(homes.get(n)!, 'tls.key'), 'utf8').split('\n')[1]!]);
    const operatorFiles = walk(fed).map((f) => readFileSync(f, 'utf8').replace(/\n/g, ''));
    for (const s of secrets) expect(operatorFiles.some((t) => t.includes(s))).toBe(false);

    for (const c of manifest.clients) {
      const home = homes.get(c.name)!;
      for (const f of c.ship) copyFileSync(join(fed, f), join(home, f.split('/').pop()!));
      mkdirSync(join(home, 'data'), { recursive: true });
      writeFileSync(join(home, 'data', 'train.txt'), text(NAMES.indexOf(c.name)));
    }
    const env = { ...FAST_ENV, FEDLORA_SECAGG_ENABLED: 'true' };
    const coordinator = spawnFedlora('coordinator', ['coordinator', '--config', join(fed, 'coordinator.yaml'), '--exit-when-done', '--json'], env);
    procs.push(coordinator);
    await coordinator.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const clients = NAMES.map((n) => spawnFedlora(n, ['client', '--config', join(homes.get(n)!, 'client.yaml')], { ...FAST_ENV }));
    procs.push(...clients);
    await unlessExited(coordinator.waitFor(isEvent('round.completed', 1), 600_000, 'round.completed round 1'), clients);
    expect(await exitWithin(coordinator, 60_000), coordinator.tail()).toBe(0);
    for (const c of clients) {
      expect(await exitWithin(c, 30_000), c.tail()).toBe(0);
      expect(c.events.some((e) => e.event === 'membership.loaded' && e.members === 3)).toBe(true);
      expect(c.events.some((e) => e.event === 'secagg.ended' && e.end === 'finished')).toBe(true);
    }
  }, 1_200_000);
});
