import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { chooseEncodingParams, clipL2, decodeAverage, encodeUpdate } from './encoding.js';
import type { Stage } from './messages.js';
import { runSecAggRound } from './run-round.js';

/** The whole secure path: encode (clip, rotate, scale, round, wrap) -> SecAgg+ -> decode, against plain FedAvg. */
function secureVsPlain(opts: { n: number; d: number; dropAt: Map<number, Stage>; seed: string }) {
  const { n, d } = opts;
  const rng = seededRandomBytes(opts.seed);
  const updates = Array.from({ length: n }, (_, i) => Float32Array.from({ length: d }, () => (uniform01(rng) - 0.5) * (i === 0 ? 0.2 : 0.01)));
  const params = chooseEncodingParams({ n, d, clip: 1 });
  const rotationSeed = rng(32);
  const encoded = new Map(updates.map((u, i) => [i, encodeUpdate(u, params, { rotationSeed, rng })]));
  const { result } = runSecAggRound({ round: 1, inputs: encoded, k: n - 1, t: Math.floor((n - 1) / 2) + 1, rng, dropAt: opts.dropAt });
  const avg = decodeAverage(result!.sum, result!.survivors.length, params, rotationSeed);
  const plain = new Float64Array(d);
  for (const id of result!.survivors) {
    const x = Float64Array.from(updates[id]!);
    clipL2(x, 1);
    for (let j = 0; j < d; j++) plain[j]! += x[j]! / result!.survivors.length;
  }
  let maxErr = 0;
  for (let j = 0; j < d; j++) maxErr = Math.max(maxErr, Math.abs(avg[j]! - plain[j]!));
  return { maxErr, survivors: result!.survivors, params };
}

describe('secure average (encoding + SecAgg+) equals plain FedAvg of the clipped updates', () => {
  it.each(['advertise', 'share', 'collect', 'consistency', 'unmask'] as const)('n = 8, d = 10000, a dropout at stage %s: max error < 1e-3', (stage) => {
    const { maxErr, survivors } = secureVsPlain({ n: 8, d: 10_000, dropAt: new Map([[3, stage]]), seed: `avg-${stage}` });
    expect(survivors).toHaveLength(stage === 'consistency' || stage === 'unmask' ? 8 : 7);
    expect(maxErr).toBeLessThan(1e-3);
  });

  it('n = 8 with dropouts at three stages in one round: max error < 1e-3', () => {
    const dropAt = new Map<number, Stage>([
      [1, 'share'],
      [5, 'collect'],
      [6, 'unmask'],
    ]);
    const { maxErr, survivors } = secureVsPlain({ n: 8, d: 10_000, dropAt, seed: 'avg-3' });
    expect(survivors).toEqual([0, 2, 3, 4, 6, 7]);
    expect(maxErr).toBeLessThan(1e-3);
  });
});
