import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import type { StrategyOptions } from './strategy.js';
import { createStrategy } from './strategy.js';
import { decodeStrategyState, encodeStrategyState } from './strategy-state.js';

/** A two-tensor adapter-shaped update with values in [-1, 1) from a seeded stream. */
function update(seed: string): NamedTensors {
  const rng = seededRandomBytes(seed);
  const v = (n: number) => Float32Array.from({ length: n }, () => 2 * uniform01(rng) - 1);
  return new Map([
    ['a', { shape: [3, 4], data: v(12) }],
    ['b', { shape: [5], data: v(5) }],
  ]);
}

const ADAPTIVE: StrategyOptions[] = [
  { name: 'fedadam', serverLearningRate: 0.05 },
  { name: 'fedyogi', serverLearningRate: 0.05 },
  { name: 'fedadagrad', serverLearningRate: 0.05 },
];

describe('server optimizer state across a restart', () => {
  for (const opts of ADAPTIVE) {
    it(`${opts.name}: restored from its bytes after round 2, continues bit-identically to the run that never stopped`, () => {
      const rounds = [1, 2, 3, 4].map((r) => update(`round-${r}`));
      const uninterrupted = createStrategy(opts);
      let x = update('init');
      for (const d of rounds) x = uninterrupted.apply(x, d);

      const before = createStrategy(opts);
      let y = update('init');
      for (const d of rounds.slice(0, 2)) y = before.apply(y, d);
      const bytes = encodeStrategyState(before.state()); // what the store commits with round 2's checkpoint
      const after = createStrategy(opts); // the restarted coordinator's fresh optimizer
      after.restore(decodeStrategyState(bytes));
      for (const d of rounds.slice(2)) y = after.apply(y, d);

      for (const k of ['a', 'b']) expect(Array.from(y.get(k)!.data)).toEqual(Array.from(x.get(k)!.data));
      expect(after.state().step).toBe(4);
    });
  }

  it('fedadam: fresh moments after round 2 (the bug) end elsewhere, by far more than 1e-6', () => {
    const rounds = [1, 2, 3, 4].map((r) => update(`round-${r}`));
    let x = update('init');
    let y = update('init');
    const s = createStrategy({ name: 'fedadam', serverLearningRate: 0.05 });
    for (const d of rounds) x = s.apply(x, d);
    const first = createStrategy({ name: 'fedadam', serverLearningRate: 0.05 });
    for (const d of rounds.slice(0, 2)) y = first.apply(y, d);
    const fresh = createStrategy({ name: 'fedadam', serverLearningRate: 0.05 });
    for (const d of rounds.slice(2)) y = fresh.apply(y, d);
    const diff = Math.max(...Array.from(x.get('a')!.data, (v, i) => Math.abs(v - y.get('a')!.data[i]!)));
    expect(diff).toBeGreaterThan(1e-3);
  });

  it('round-trips every float64 moment exactly, and FedAvg as step only', () => {
    const moments = { w: { m: Float64Array.of(0.1, -0, Number.MIN_VALUE, 1e300), v: Float64Array.of(1e-6, 2, 3, 4) } };
    const back = decodeStrategyState(encodeStrategyState({ name: 'fedadam', step: 7, moments }));
    expect(back.step).toBe(7);
    expect(Array.from(back.moments!.w!.m)).toEqual(Array.from(moments.w.m));
    expect(Array.from(back.moments!.w!.v)).toEqual(Array.from(moments.w.v));
    expect(decodeStrategyState(encodeStrategyState({ name: 'fedavg', step: 3 }))).toEqual({ name: 'fedavg', step: 3 });
  });

  it("refuses another optimizer's state and bytes that do not add up", () => {
    expect(() => createStrategy({ name: 'fedyogi' }).restore({ name: 'fedadam', step: 1 })).toThrow(/expected the state of fedyogi, received the state of fedadam/);
    const bytes = encodeStrategyState({ name: 'fedadam', step: 1, moments: { w: { m: Float64Array.of(1), v: Float64Array.of(1) } } });
    expect(() => decodeStrategyState(bytes.subarray(0, bytes.length - 8))).toThrow(/expected \d+ bytes/);
    const s = createStrategy({ name: 'fedadam' });
    s.restore({ name: 'fedadam', step: 1, moments: { a: { m: new Float64Array(2), v: new Float64Array(2) } } });
    expect(() => s.apply(update('x'), update('y'))).toThrow(/tensor "a" has 2 moments, the update has 12 values/);
  });
});
