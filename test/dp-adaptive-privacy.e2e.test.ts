import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { epsilonOf, verifyLedgerFile } from '@fedlora/privacy';
import { BIN } from './process-harness.js';

const run = promisify(execFile);

describe('fedlora simulate --dp-mode central --dp-adaptive-clip (Andrew et al. 2021) over gRPC', () => {
  it('moves the clip norm between rounds, shows it per round, and writes ledgers that fedlora audit accepts with the same epsilon', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedlora-adaptive-e2e-'));
    // The first clip is far below any update norm: every client reports "clipped", so C must grow each round.
    const sim = await run(
      process.execPath,
      [BIN, 'simulate', '--clients', '3', '--rounds', '3', '--local-steps', '2', '--batch-size', '4', '--seq-len', '32', '--chars-per-client', '8000', '--eval-sequences', '2',
        '--dp-mode', 'central', '--dp-clip', '0.0001', '--dp-noise-multiplier', '1', '--dp-adaptive-clip', '--dp-adaptive-lr', '0.5', '--delta', '1e-5', '--out', out, '--json'],
      { maxBuffer: 16 << 20 },
    );
    const report = JSON.parse(sim.stdout) as {
      rounds: Array<{ round: number; status: string; clipNorm: number; epsilon: number }>;
      privacy: { adaptiveClipping: { targetQuantile: number; learningRate: number } };
      ledgers: string[];
      trustedKeys: string;
    };
    expect(report.rounds.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
    const clips = report.rounds.map((r) => r.clipNorm);
    expect(clips[0]).toBe(0.0001);
    expect(new Set(clips).size).toBe(3); // C changed every round
    expect(report.privacy.adaptiveClipping).toMatchObject({ targetQuantile: 0.5, learningRate: 0.5 });

    // The federation ledger records the round's C, z_Delta, sigma_b and survivors; the client ledgers the same C.
    const fed = verifyLedgerFile(report.ledgers[0]!);
    const params = fed.parsed.map((e) => e.params as { clipNorm: number; noiseMultiplier: number; countNoiseStd: number; survivors: number });
    expect(params.map((p) => p.clipNorm)).toEqual(clips);
    // Three institutions: sigma_b = max(3/20, z) = 1, so z_Delta = (1 - 1/4)^(-1/2).
    for (const p of params) expect(p).toMatchObject({ countNoiseStd: 1, survivors: 3 });
    expect(params[0]!.noiseMultiplier).toBeCloseTo(2 / Math.sqrt(3), 12);
    for (const path of report.ledgers.slice(1)) {
      expect(verifyLedgerFile(path).parsed.map((e) => (e.params as { clipNorm: number }).clipNorm)).toEqual(clips);
    }

    // The auditor's tool agrees, and the epsilon is that of three Gaussian rounds with z = 1, a hair more for the
    // central grid and clip slack (central-grid.ts: z_Delta is accounted as z' = z C / (C (1 + 1e-4) + sqrt(d) h)).
    const audit = await run(process.execPath, [BIN, 'audit', ...report.ledgers, '--trusted-keys', report.trustedKeys, '--json'], { maxBuffer: 8 << 20 });
    const a = JSON.parse(audit.stdout) as { valid: boolean; problems: unknown[]; federation: { epsilon: number } };
    expect(a.problems).toEqual([]);
    expect(a.valid).toBe(true);
    const fixed = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 1, steps: 3 }], { delta: 1e-5 }).epsilon;
    expect(a.federation.epsilon).toBeGreaterThan(fixed);
    expect(a.federation.epsilon / fixed).toBeLessThan(1.01);
    expect(report.rounds[2]!.epsilon).toBeCloseTo(a.federation.epsilon, 6);
  }, 180_000);

  it('with distributed noise over SecAgg+: the bits ride in the secure sum, C moves, and the ledgers pass the audit', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fedlora-adaptive-dist-e2e-'));
    const sim = await run(
      process.execPath,
      [BIN, 'simulate', '--clients', '3', '--rounds', '2', '--local-steps', '2', '--batch-size', '4', '--seq-len', '32', '--chars-per-client', '8000', '--eval-sequences', '2',
        '--dp-mode', 'distributed', '--secagg', '--dp-clip', '0.0001', '--dp-noise-multiplier', '1', '--dp-adaptive-clip', '--dp-adaptive-lr', '0.5', '--out', out, '--json'],
      { maxBuffer: 16 << 20 },
    );
    const report = JSON.parse(sim.stdout) as { rounds: Array<{ status: string; clipNorm: number; noiseStd: number; plannedNoiseStd: number }>; ledgers: string[]; trustedKeys: string };
    expect(report.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(report.rounds[0]!.clipNorm).toBe(0.0001);
    expect(report.rounds[1]!.clipNorm).not.toBe(0.0001);
    // The measured noise of the secure average is what was planned for the round's C and z_Delta.
    for (const r of report.rounds) expect(Math.abs(r.noiseStd / r.plannedNoiseStd - 1)).toBeLessThan(0.1);
    const fed = verifyLedgerFile(report.ledgers[0]!);
    expect(fed.parsed.map((e) => (e.params as { clipNorm: number }).clipNorm)).toEqual(report.rounds.map((r) => r.clipNorm));
    expect(fed.parsed[0]!.events.map((e) => e.mechanism)).toEqual(['skellam', 'skellam']); // the update and the count
    const audit = await run(process.execPath, [BIN, 'audit', ...report.ledgers, '--trusted-keys', report.trustedKeys, '--json'], { maxBuffer: 8 << 20 });
    const a = JSON.parse(audit.stdout) as { valid: boolean; problems: unknown[] };
    expect(a.problems).toEqual([]);
    expect(a.valid).toBe(true);
  }, 180_000);

  it('refuses --dp-adaptive-clip without a DP mode, and central noise behind --secagg, saying why', async () => {
    const none = await run(process.execPath, [BIN, 'simulate', '--dp-adaptive-clip', '--json']).catch((e: { code: number; stderr: string }) => e);
    expect((none as { code: number }).code).not.toBe(0);
    expect((none as { stderr: string }).stderr).toMatch(/--dp-adaptive-clip needs --dp-mode central \(without --secagg\) or --dp-mode distributed \(with --secagg\)/);
    const central = await run(process.execPath, [BIN, 'simulate', '--dp-mode', 'central', '--secagg', '--dp-adaptive-clip', '--json']).catch((e: { code: number; stderr: string }) => e);
    expect((central as { code: number }).code).not.toBe(0);
    expect((central as { stderr: string }).stderr).toMatch(/needs each clipped-indicator bit, which --secagg hides/);
  }, 60_000);
});
