import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { STAGES, type Stage } from './messages.js';
import { runSecAggRound } from './run-round.js';
import type { SecAggServer } from './server.js';

/**
 * Property: on a sparse SecAgg+ graph, whatever the dropout pattern (who, at which stage, how
 * many), a round either releases exactly the sum of its survivors' inputs or aborts with a
 * threshold error and releases nothing. It never releases a wrong sum.
 */
describe('SecAgg+ under random dropouts (n = 24, k = 8, t = 5)', () => {
  it('releases the exact survivor sum or aborts on the threshold, over 12 random patterns', () => {
    const rng = seededRandomBytes('dropout-property');
    const n = 24;
    const dim = 40;
    const inputs = new Map(Array.from({ length: n }, (_, i) => [i, new Uint32Array(rng(4 * dim).slice().buffer)]));
    let finished = 0;
    let aborted = 0;
    for (let trial = 0; trial < 12; trial++) {
      const dropCount = uniformInt(rng, 11); // 0..10 clients vanish
      const dropAt = new Map<number, Stage>();
      while (dropAt.size < dropCount) dropAt.set(uniformInt(rng, n), STAGES[uniformInt(rng, STAGES.length)]!);
      // pendingCount() (O(1), read on every message) must agree with the list pending() walks, at every stage's end and start.
      const countAgrees = (_: Stage, server: SecAggServer) => expect(server.pendingCount()).toBe(server.pending().length);
      const out = runSecAggRound({ round: 1000 + trial, inputs, k: 8, t: 5, rng, dropAt, onBeforeAdvance: countAgrees, onStage: countAgrees });
      if (out.result) {
        const expected = new Uint32Array(dim);
        for (const id of out.result.survivors) for (let j = 0; j < dim; j++) expected[j] += inputs.get(id)![j]!;
        expect(out.result.sum).toEqual(expected);
        // Survivors are exactly the clients that uploaded: not dropped before the consistency stage.
        const uploaded = [...inputs.keys()].filter((id) => {
          const s = dropAt.get(id);
          const clientAbort = out.clientAborts.has(id); // refused to continue: too few neighbours left
          return !clientAbort && (s === undefined || s === 'consistency' || s === 'unmask');
        });
        expect(out.result.survivors).toEqual(uploaded);
        finished++;
      } else {
        expect(out.aborted?.check).toBe('threshold');
        expect(() => out.server.result()).toThrow(/nothing is released/);
        aborted++;
      }
    }
    expect(finished).toBeGreaterThan(3);
    expect(aborted).toBeGreaterThan(0);
    expect(finished + aborted).toBe(12);
  });
});
