import { describe, expect, it } from 'vitest';
import { seededRandomBytes } from '@fedlora/tensor';
import { SecAggError } from './errors.js';
import type { Stage } from './messages.js';
import { runSecAggRound } from './run-round.js';

function inputs(n: number, dim: number, seed: string): Map<number, Uint32Array> {
  const rng = seededRandomBytes(seed);
  return new Map(Array.from({ length: n }, (_, i) => [i, new Uint32Array(rng(4 * dim).slice().buffer)]));
}

function plainSum(inp: ReadonlyMap<number, Uint32Array>, ids: readonly number[]): Uint32Array {
  const dim = inp.values().next().value!.length;
  const s = new Uint32Array(dim);
  for (const id of ids) {
    const v = inp.get(id)!;
    for (let i = 0; i < dim; i++) s[i] += v[i]!;
  }
  return s;
}

describe('SecAgg+ round (in-process)', () => {
  it('without dropouts the server learns exactly the sum (full SecAgg, n = 8)', () => {
    const inp = inputs(8, 1000, 'p-full');
    const { result, server } = runSecAggRound({ round: 1, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-full'), chunkWords: 300 });
    expect(result!.survivors).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(server.plan()).toMatchObject({ round: 1, k: 7, t: 4, dim: 1000, cohort: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(server.plan().sessionIdHex).toMatch(/^[0-9a-f]{64}$/);
    expect(result!.sum).toEqual(plainSum(inp, result!.survivors));
  });

  it('with a sparse Harary graph (n = 20, k = 6) the masks still cancel', () => {
    const inp = inputs(20, 257, 'p-sparse');
    const { result } = runSecAggRound({ round: 2, inputs: inp, k: 6, t: 4, rng: seededRandomBytes('r-sparse') });
    expect(result!.sum).toEqual(plainSum(inp, [...inp.keys()]));
  });

  it('n = 12 with a dropout at every stage in one round gives the sum of the survivors', () => {
    const inp = inputs(12, 500, 'p-drop');
    const dropAt = new Map<number, Stage>([
      [1, 'advertise'],
      [3, 'share'],
      [5, 'collect'],
      [6, 'consistency'],
      [8, 'unmask'],
    ]);
    const { result, aborted } = runSecAggRound({ round: 3, inputs: inp, k: 11, t: 6, rng: seededRandomBytes('r-drop'), dropAt });
    expect(aborted).toBeUndefined();
    // 1 and 3 never shared keys, 5 never uploaded; 6 and 8 uploaded, then vanished: their inputs count.
    expect(result!.survivors).toEqual([0, 2, 4, 6, 7, 8, 9, 10, 11]);
    expect(result!.sum).toEqual(plainSum(inp, [0, 2, 4, 6, 7, 8, 9, 10, 11]));
  });

  it.each(['advertise', 'share', 'collect', 'consistency', 'unmask'] as const)('n = 8: two clients dropping at stage %s are recovered', (stage) => {
    const inp = inputs(8, 200, `p-8-${stage}`);
    const dropAt = new Map<number, Stage>([
      [2, stage],
      [5, stage],
    ]);
    const { result } = runSecAggRound({ round: 7, inputs: inp, k: 7, t: 4, rng: seededRandomBytes(`r-8-${stage}`), dropAt });
    const expected = stage === 'consistency' || stage === 'unmask' ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 3, 4, 6, 7];
    expect(result!.survivors).toEqual(expected);
    expect(result!.sum).toEqual(plainSum(inp, expected));
  });

  it('a client vanishing during unmasking does not stop the round', () => {
    const inp = inputs(8, 100, 'p-unmask');
    const dropAt = new Map<number, Stage>([
      [2, 'unmask'],
      [3, 'collect'],
    ]);
    const { result } = runSecAggRound({ round: 4, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-unmask'), dropAt });
    expect(result!.sum).toEqual(plainSum(inp, result!.survivors));
    expect(result!.survivors).toEqual([0, 1, 2, 4, 5, 6, 7]);
  });

  it('masks cancel for every survivor set the threshold allows (n = 7, k = 6, t = 4: all 29 sets)', () => {
    const inp = inputs(7, 64, 'p-all');
    const all = [0, 1, 2, 3, 4, 5, 6];
    let rounds = 0;
    for (let mask = 0; mask < 128; mask++) {
      const droppers = all.filter((i) => mask & (1 << i));
      if (droppers.length > 2) continue;
      const dropAt = new Map<number, Stage>(droppers.map((i) => [i, 'collect']));
      const { result } = runSecAggRound({ round: 100 + mask, inputs: inp, k: 6, t: 4, rng: seededRandomBytes(`r-all-${mask}`), dropAt });
      const survivors = all.filter((i) => !droppers.includes(i));
      expect(result!.survivors).toEqual(survivors);
      expect(result!.sum).toEqual(plainSum(inp, survivors));
      rounds++;
    }
    expect(rounds).toBe(29);
  });

  it('a client vanishing mid-upload is dropped when uploads are staged (memory O(d * slots))', () => {
    const inp = inputs(8, 1000, 'p-mid');
    const { result } = runSecAggRound({ round: 8, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-mid'), chunkWords: 256, stagedUploads: 2, vanishMidUpload: new Map([[4, 512]]) });
    expect(result!.survivors).toEqual([0, 1, 2, 3, 5, 6, 7]);
    expect(result!.sum).toEqual(plainSum(inp, [0, 1, 2, 3, 5, 6, 7]));
  });

  it('a client vanishing mid-upload aborts the round when chunks go straight into the sum', () => {
    const inp = inputs(8, 1000, 'p-mid2');
    const { aborted } = runSecAggRound({ round: 9, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-mid2'), chunkWords: 256, vanishMidUpload: new Map([[4, 512]]) });
    expect(aborted?.check).toBe('chunk');
    expect(aborted?.message).toMatch(/stopped mid-upload/);
  });

  it('too many dropouts abort cleanly with a threshold error and release nothing', () => {
    const inp = inputs(8, 100, 'p-abort');
    const dropAt = new Map<number, Stage>([0, 1, 2, 3, 4].map((i) => [i, 'collect']));
    const { result, aborted, server } = runSecAggRound({ round: 5, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-abort'), dropAt });
    expect(result).toBeUndefined();
    expect(aborted).toBeInstanceOf(SecAggError);
    expect(server.stage).toBe('aborted');
    expect(() => server.result()).toThrow(/nothing is released/);
    expect(server.poll(7).kind).toBe('aborted');
  });

  it('too many dropouts during unmasking also abort', () => {
    const inp = inputs(8, 100, 'p-abort2');
    const dropAt = new Map<number, Stage>([0, 1, 2, 3, 4].map((i) => [i, 'unmask']));
    const { aborted } = runSecAggRound({ round: 6, inputs: inp, k: 7, t: 4, rng: seededRandomBytes('r-abort2'), dropAt });
    expect(aborted?.check).toBe('threshold');
  });
});
