import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { loraAggregationError } from './aggregation-error.js';

/** One adapted module with A [r, dIn] and B [dOut, r], under PEFT names. */
const adapter = (a: number[], b: number[], r: number): NamedTensors =>
  new Map([
    ['m.lora_A.weight', { shape: [r, a.length / r], data: Float32Array.from(a) }],
    ['m.lora_B.weight', { shape: [b.length / r, r], data: Float32Array.from(b) }],
  ]);

describe('loraAggregationError', () => {
  it('is |mean(B_i A_i) - mean(B_i) mean(A_i)| / |mean(B_i A_i)|: 1x1 factors 1 and 3 give (5 - 4) / 5', () => {
    expect(loraAggregationError([{ adapter: adapter([1], [1], 1), weight: 1 }, { adapter: adapter([3], [3], 1), weight: 1 }])).toBeCloseTo(0.2, 12);
  });

  it('uses the round\'s weights (FedAvg: example counts)', () => {
    // mean(BA) = (3*1 + 1*9) / 4 = 3; mean(B) = mean(A) = (3*1 + 1*3) / 4 = 1.5; error |3 - 2.25| / 3 = 0.25.
    expect(loraAggregationError([{ adapter: adapter([1], [1], 1), weight: 3 }, { adapter: adapter([3], [3], 1), weight: 1 }])).toBeCloseTo(0.25, 12);
  });

  it('is zero when every client has the same A (FFA-LoRA), whatever their B', () => {
    const a = [0.3, -0.2, 0.5, 0.1, 0.7, -0.4]; // r 2, dIn 3
    const e = loraAggregationError([
      { adapter: adapter(a, [1, 2, 3, 4], 2), weight: 2 },
      { adapter: adapter(a, [-1, 0.5, 2, -3], 2), weight: 5 },
    ]);
    expect(e).toBeLessThan(1e-15);
  });

  it('refuses an empty round', () => {
    expect(() => loraAggregationError([])).toThrow(/at least one client adapter/);
  });
});
