import type { RoundPlan } from '@fedlora/federation';
import type { NamedTensors } from '@fedlora/tensor';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSecureSimulation } from './secure-setup.js';

/** A plan with one 1x4 tensor (plain LoRA: the update carries every tensor). */
const plan = { round: 3, tensors: [{ name: 'w', shape: [1, 4] }] } as unknown as RoundPlan;
const delta = (data: number[]): NamedTensors => new Map([['w', { shape: [1, 4], data: Float32Array.from(data) }]]);

describe('createSecureSimulation: the aggregation error it measures', () => {
  const sim = createSecureSimulation(['a', 'b', 'c'], { dropout: 0, clipNorm: 1, stageTimeoutMs: 1000, seed: 't', keyDir: mkdtempSync(join(tmpdir(), 'fedlora-secure-setup-')) });
  const trainer = (data: number[]) => ({ numExamples: 1, train: async () => ({ delta: delta(data), numExamples: 1, trainLoss: 0 }) });

  it('compares with the plain mean of the survivors clipped updates only, and forgets the round', async () => {
    await sim.recordUpdates('a', trainer([0.5, 0, 0, 0])).train(plan, new Map());
    await sim.recordUpdates('b', trainer([3, 4, 0, 0])).train(plan, new Map()); // norm 5 > clip 1: scaled to (0.6, 0.8)
    await sim.recordUpdates('c', trainer([100, 0, 0, 0])).train(plan, new Map()); // dropped: not in the mean
    const plainMean = Float64Array.from([(0.5 + 0.6) / 2, 0.8 / 2, 0, 0]);
    expect(sim.measure(3, ['a', 'b'], plainMean).aggregateMaxAbsError).toBeLessThan(1e-15);
    await sim.recordUpdates('a', trainer([0.5, 0, 0, 0])).train(plan, new Map());
    await sim.recordUpdates('b', trainer([3, 4, 0, 0])).train(plan, new Map());
    const off = Float64Array.from(plainMean);
    off[2] = 0.25;
    expect(sim.measure(3, ['a', 'b'], off).aggregateMaxAbsError).toBeCloseTo(0.25, 12);
    // measure forgets the round: a second call has no updates to compare with.
    expect(sim.measure(3, ['a', 'b'], plainMean).aggregateMaxAbsError).toBeNaN();
  });
});
