import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { createStrategy } from './strategy.js';

const t = (v: number[]): NamedTensors => new Map([['w', { shape: [v.length], data: Float32Array.from(v) }]]);

describe('server strategies', () => {
  it('FedAvg adds the averaged delta (server learning rate 1)', () => {
    const out = createStrategy({ name: 'fedavg' }).apply(t([1, 2]), t([0.5, -1]));
    expect(Array.from(out.get('w')!.data)).toEqual([1.5, 1]);
  });

  it('FedAdam follows Reddi et al. 2021 Algorithm 2 for two steps', () => {
    const s = createStrategy({ name: 'fedadam', serverLearningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.001 });
    let x = s.apply(t([0]), t([1]));
    // m = 0.1, v = 0.99*1e-6 + 0.01 = 0.01000099, x = 0.1*0.1/(sqrt(v)+1e-3)
    let m = 0.1;
    let v = 0.99 * 1e-6 + 0.01;
    let expected = (0.1 * m) / (Math.sqrt(v) + 0.001);
    expect(x.get('w')!.data[0]).toBeCloseTo(expected, 5);
    x = s.apply(x, t([-2]));
    m = 0.9 * m + 0.1 * -2;
    v = 0.99 * v + 0.01 * 4;
    expected += (0.1 * m) / (Math.sqrt(v) + 0.001);
    expect(x.get('w')!.data[0]).toBeCloseTo(expected, 5);
  });

  it('FedYogi grows v only by sign(v - g²)', () => {
    const s = createStrategy({ name: 'fedyogi', serverLearningRate: 1, beta1: 0, beta2: 0.5, tau: 1 });
    const x = s.apply(t([0]), t([2]));
    // v0 = τ² = 1; g² = 4; v = 1 - 0.5*4*sign(1-4) = 3; m = 2; x = 2/(sqrt 3 + 1)
    expect(x.get('w')!.data[0]).toBeCloseTo(2 / (Math.sqrt(3) + 1), 5);
  });

  it('FedAdagrad accumulates squared deltas', () => {
    const s = createStrategy({ name: 'fedadagrad', serverLearningRate: 1, beta1: 0, tau: 1 });
    const x = s.apply(t([0]), t([3]));
    expect(x.get('w')!.data[0]).toBeCloseTo(3 / (Math.sqrt(10) + 1), 5);
  });

  it('does not modify its inputs', () => {
    const g = t([1]);
    createStrategy({ name: 'fedadam' }).apply(g, t([1]));
    expect(g.get('w')!.data[0]).toBe(1);
  });

  it('rejects an unknown strategy name', () => {
    expect(() => createStrategy({ name: 'fedsgd' as never })).toThrow(/expected one of fedavg/);
  });
});
