import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { chooseEncodingParams, clipL2, decodeAverage, encodeUpdate, plannedAverageNoiseStd } from './encoding.js';
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

  it('with distributed noise shares, the aggregate noise has the planned standard deviation (survivors, not cohort)', () => {
    const n = 8;
    const d = 8192;
    const rng = seededRandomBytes('avg-dp');
    const sigma = 0.002; // per-client noise std in update units
    const params = chooseEncodingParams({ n, d, clip: 1, noiseStddevPerClient: sigma });
    // Stand-in integer noise share for this test only (the real one is the discrete Gaussian of libs/privacy).
    const noise = (len: number) => {
      const out = new Int32Array(len);
      for (let i = 0; i < len; i++) {
        const u1 = uniform01(rng) || 1e-12;
        out[i] = Math.round(params.noiseStddevInt * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * uniform01(rng)));
      }
      return out;
    };
    const updates = Array.from({ length: n }, () => Float32Array.from({ length: d }, () => (uniform01(rng) - 0.5) * 0.01));
    const rotationSeed = rng(32);
    const encoded = new Map(updates.map((u, i) => [i, encodeUpdate(u, params, { rotationSeed, rng, noise })]));
    const dropAt = new Map<number, Stage>([[2, 'collect']]);
    const { result } = runSecAggRound({ round: 1, inputs: encoded, k: 7, t: 4, rng, dropAt });
    const count = result!.survivors.length;
    const avg = decodeAverage(result!.sum, count, params, rotationSeed);
    let s2 = 0;
    for (let j = 0; j < d; j++) {
      let plain = 0;
      for (const id of result!.survivors) plain += updates[id]![j]! / count;
      s2 += (avg[j]! - plain) ** 2;
    }
    const measured = Math.sqrt(s2 / d);
    const planned = plannedAverageNoiseStd(params, count);
    expect(count).toBe(7);
    expect(Math.abs(measured / planned - 1)).toBeLessThan(0.05);
  });
});
