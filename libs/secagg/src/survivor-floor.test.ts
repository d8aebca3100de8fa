import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import type { Stage } from './messages.js';
import { runSecAggRound } from './run-round.js';

/**
 * #16 finding 8: with distributed DP each input carries 1/minSurvivors of the noise variance, so a
 * sum of fewer inputs must never be unmasked. The coordinator is hostile here: its server does not
 * check the floor, and the clients must refuse on their own.
 */
const inputs = new Map([1, 2, 3, 4, 5, 6, 7].map((id) => [id, Uint32Array.from({ length: 16 }, (_, i) => id * 1000 + i)]));
const twoDropAtCollect = new Map<number, Stage>([
  [6, 'collect'],
  [7, 'collect'],
]);

describe('survivor floor (minSurvivors)', () => {
  it('clients refuse to sign or unmask a survivor set below their floor, even when the server asks', () => {
    // Full SecAgg, n = 7, t = 4: five survivors are enough for the protocol, not for noise planned for six.
    const out = runSecAggRound({ round: 1, inputs, k: 6, t: 4, rng: seededRandomBytes('floor-hostile'), dropAt: twoDropAtCollect, clientMinSurvivors: 6 });
    expect(out.result).toBeUndefined();
    expect(out.aborted?.check).toBe('threshold');
    for (const id of [1, 2, 3, 4, 5]) {
      expect(out.clientAborts.get(id)?.check).toBe('threshold');
      expect(out.clientAborts.get(id)?.message).toMatch(/survivor set has 5 clients; client \d unmasks no sum of fewer than 6/);
    }
    expect(out.server.stage).toBe('aborted');
  });

  it('without the floor the same hostile round unmasks a five-input sum (what the floor prevents)', () => {
    const out = runSecAggRound({ round: 1, inputs, k: 6, t: 4, rng: seededRandomBytes('floor-hostile'), dropAt: twoDropAtCollect });
    expect(out.result?.survivors).toEqual([1, 2, 3, 4, 5]);
  });

  it('an honest server aborts at collection, before asking anyone for unmasking shares', () => {
    const stages: string[] = [];
    const out = runSecAggRound({
      round: 1,
      inputs,
      k: 6,
      t: 4,
      rng: seededRandomBytes('floor-honest'),
      dropAt: twoDropAtCollect,
      serverMinSurvivors: 6,
      onStage: (_s, server) => stages.push(server.stage),
    });
    expect(out.aborted?.check).toBe('threshold');
    expect(out.aborted?.message).toMatch(/5 clients uploaded inputs \(need >= 6\)/);
    expect(stages).toEqual(['share', 'receipt', 'collect', 'aborted']);
  });
});
