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

    // The auditor's tool agrees, and the epsilon is that of three Gaussian rounds with z = 1.
    const audit = await run(process.execPath, [BIN, 'audit', ...report.ledgers, '--json'], { maxBuffer: 8 << 20 });
    const a = JSON.parse(audit.stdout) as { valid: boolean; problems: unknown[]; federation: { epsilon: number } };
    expect(a.problems).toEqual([]);
    expect(a.valid).toBe(true);
    const fixed = epsilonOf([{ mechanism: 'sampled_gaussian', noiseMultiplier: 1, samplingRate: 1, steps: 3 }], { delta: 1e-5 }).epsilon;
    expect(a.federation.epsilon).toBeCloseTo(fixed, 6);
    expect(report.rounds[2]!.epsilon).toBeCloseTo(fixed, 6);
  }, 180_000);

  it('refuses adaptive clipping with distributed noise, naming the gap', async () => {
    const err = await run(process.execPath, [BIN, 'simulate', '--dp-mode', 'distributed', '--secagg', '--dp-adaptive-clip', '--json']).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).not.toBe(0);
    expect((err as { stderr: string }).stderr).toMatch(/--dp-adaptive-clip needs --dp-mode central.*not yet carried through secure aggregation/);
  });
});
