/**
 * Adaptive clipping in a configured federation (separate processes, TLS): the coordinator's
 * `privacy.adaptiveClipping` (set here through its environment override) drives the clip of
 * central DP-FedAvg rounds; the federation ledger, checked with `fedlora audit`, records a new
 * clip norm every round.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyLedgerFile } from '@fedlora/privacy';
import { BIN, FAST_ENV, exitWithin, freePort, isEvent, killAll, provision, removeFederation, spawnFedlora, type FedloraProcess } from './process-harness.js';

const run = promisify(execFile);
const procs: FedloraProcess[] = [];
let fedDir: string | undefined;

afterAll(() => {
  killAll(procs);
  if (fedDir) removeFederation(fedDir);
});

describe('a configured federation with privacy.adaptiveClipping (separate processes, TLS)', () => {
  it('plans every round with the clip the previous one set, and its ledger passes fedlora audit', async () => {
    const port = await freePort();
    fedDir = await provision({ clients: 2, rounds: 3, port });
    const coordEnv = {
      ...FAST_ENV,
      FEDLORA_PRIVACY_MODE: 'central',
      FEDLORA_PRIVACY_CLIP_NORM: '0.0001',
      FEDLORA_PRIVACY_NOISE_MULTIPLIER: '1',
      FEDLORA_PRIVACY_DELTA: '1e-5',
      FEDLORA_PRIVACY_ADAPTIVE_CLIPPING: '{learningRate: 0.5}',
    };
    const coordinator = spawnFedlora('coordinator', ['coordinator', '--config', join(fedDir, 'coordinator.yaml'), '--exit-when-done', '--json'], coordEnv);
    procs.push(coordinator);
    await coordinator.waitFor(isEvent('coordinator.listening'), 180_000, 'coordinator.listening');
    const clients = ['inst-1', 'inst-2'].map((n) => spawnFedlora(n, ['client', '--config', join(fedDir!, 'clients', `${n}.yaml`)], FAST_ENV));
    procs.push(...clients);
    expect(await exitWithin(coordinator, 150_000), coordinator.tail()).toBe(0);
    for (const c of clients) expect(await exitWithin(c, 20_000), c.tail()).toBe(0);

    const ledgerPath = join(fedDir, 'data', 'coordinator', 'federation-ledger.jsonl');
    const params = verifyLedgerFile(ledgerPath).parsed.map((e) => e.params as { clipNorm: number; countNoiseStd: number; survivors: number; adaptive: { learningRate: number; nextClipNorm: number } });
    expect(params).toHaveLength(3);
    expect(params[0]!.clipNorm).toBe(0.0001);
    for (const p of params) expect(p).toMatchObject({ countNoiseStd: 1, survivors: 2, adaptive: { learningRate: 0.5 } });
    for (let r = 1; r < 3; r++) expect(params[r]!.clipNorm).toBe(params[r - 1]!.adaptive.nextClipNorm);
    const audit = await run(process.execPath, [BIN, 'audit', ledgerPath, '--trusted-keys', join(fedDir, 'trusted-keys.json'), '--json'], { maxBuffer: 8 << 20 });
    const report = JSON.parse(audit.stdout) as { valid: boolean; problems: unknown[]; entries: number; federation: { rounds: Array<{ clipNorm: number }> } };
    expect(report.problems).toEqual([]);
    expect(report.federation.rounds.map((r) => r.clipNorm)).toEqual(params.map((p) => p.clipNorm)); // the auditor sees C per round
    expect(report.valid).toBe(true);
    expect(report.entries).toBe(3);
  }, 1_200_000);
});
