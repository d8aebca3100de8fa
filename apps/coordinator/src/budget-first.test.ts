import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RoundPlan } from '@fedlora/federation';
import { plannedPrivacy } from '@fedlora/federation';
import type { PrivacyEvent } from '@fedlora/privacy';
import { dpRoundParams, epsilonOf, roundEvents } from '@fedlora/privacy';
import { chooseEncodingParams } from '@fedlora/secagg';
import { openSqliteStore } from '@fedlora/store';
import { cryptoRandomBytes } from '@fedlora/tensor';
import { generateIdentity, saveIdentity } from '@fedlora/transport-grpc';
import { parseCoordinatorConfig } from './config.js';
import { configureProtection } from './config-protection.js';

const KEY = Buffer.alloc(32, 5).toString('base64');
const D = 24_576; // the bundled model's LoRA update (32,768 once padded for secure aggregation)

function config(privacy: Record<string, unknown>, secagg: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-budget-first-'));
  saveIdentity(join(dir, 'coordinator.key.json'), generateIdentity('coordinator', cryptoRandomBytes));
  return parseCoordinatorConfig({
    federationId: 'f',
    insecure: true,
    dataDir: dir,
    identity: { secretKeyFile: join(dir, 'coordinator.key.json') },
    rounds: { total: 3, minClients: 3 },
    clients: ['a', 'b', 'c'].map((name) => ({ name, publicKey: KEY })),
    privacy,
    ...(secagg ? { secagg: { enabled: true } } : {}),
  });
}

/** The epsilon the federation ledger reaches after rounds.total rounds, accounted from the plan as the coordinator does. */
function ledgerEpsilonAfterAllRounds(privacy: Record<string, unknown>, secagg: boolean, rounds: number): number {
  const plan = { round: 1, privacy, ...(secagg ? { secagg: { encoding: chooseEncodingParams({ n: 3, d: D, clip: privacy['clipNorm'] as number, bits: 32 }) } } : {}) } as unknown as RoundPlan;
  const planned = plannedPrivacy(plan)!;
  const one = roundEvents(dpRoundParams(planned, { survivors: 3, dimension: planned.dimension }));
  const all: PrivacyEvent[] = [];
  for (let r = 0; r < rounds; r++) all.push(...one);
  return epsilonOf(all, { delta: privacy['delta'] as number }).epsilon;
}

describe('budget first in the coordinator config: privacy.epsilon calibrates central noise over rounds.total', () => {
  for (const secagg of [false, true]) {
    it(`spends the budget and no more over the planned rounds${secagg ? ', behind SecAgg+' : ''}; the plan carries the calibration`, async () => {
      const cfg = config({ mode: 'central', clipNorm: 0.1, delta: 1e-5, epsilon: 8 }, secagg);
      const store = openSqliteStore(join(cfg.dataDir, 'fedlora.db'));
      const protection = await configureProtection(cfg, store, D);
      const privacy = protection.planExtra().privacy as unknown as Record<string, unknown> & { noiseMultiplier: number; calibration: { targetEpsilon: number; steps: number } };
      expect(privacy.calibration).toMatchObject({ targetEpsilon: 8, steps: 3 });
      expect(privacy.noiseMultiplier).toBeGreaterThan(0.5);
      const eps = ledgerEpsilonAfterAllRounds(privacy, secagg, 3);
      expect(eps).toBeLessThanOrEqual(8);
      expect(eps).toBeGreaterThan(8 - 1e-3);
      store.close();
    });
  }

  it('refuses epsilon with noiseMultiplier, with distributed noise and with adaptive clipping, saying what to give', () => {
    expect(() => config({ mode: 'central', clipNorm: 0.1, delta: 1e-5, epsilon: 8, noiseMultiplier: 1 }, false)).toThrow(/privacy.epsilon: epsilon calibrates the noise multiplier: give epsilon or noiseMultiplier, not both/);
    expect(() => config({ mode: 'distributed', clipNorm: 0.1, delta: 1e-5, epsilon: 8 }, true)).toThrow(/privacy.epsilon: epsilon \(budget first\) calibrates central noise with a fixed clipNorm/);
    expect(() => config({ mode: 'central', clipNorm: 0.1, delta: 1e-5, epsilon: 8, adaptiveClipping: {} }, false)).toThrow(/privacy.epsilon: epsilon \(budget first\) calibrates central noise/);
  });

  it('refuses a delta above 1/(number of institutions)', async () => {
    const cfg = config({ mode: 'central', clipNorm: 0.1, delta: 0.5, epsilon: 8 }, false);
    const store = openSqliteStore(join(cfg.dataDir, 'fedlora.db'));
    await expect(configureProtection(cfg, store, D)).rejects.toThrow(/delta/);
    store.close();
  });
});
