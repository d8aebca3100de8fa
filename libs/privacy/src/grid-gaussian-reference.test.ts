import { createHash } from 'node:crypto';
import { seededRandomBytes } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { gaussianOnGridReference } from './grid-gaussian-reference.js';
import { gaussianOnGrid, sampleDiscreteGaussian, samplePoisson, sampleSkellam } from './samplers.js';

const digest = (xs: ArrayLike<number>): string => createHash('sha256').update(Array.from(xs).join(',')).digest('hex').slice(0, 16);

describe('gaussianOnGrid reads the same coins as the BigInt reference (CKS 2020 Algorithm 3)', () => {
  it.each([
    ['the default grid sigma 2^-16 (DP-SGD)', 0.01, undefined],
    ['a grid of sigma / 1024', 0.37, 0.37 / 1024],
    ['a grid whose (sigma/step)^2 is a fraction', 0.013, 0.001],
    ['a coarse grid (small t)', 1, 0.5],
  ])('on %s', (_name, sigma, step) => {
    const fast = gaussianOnGrid(sigma, 3000, seededRandomBytes(`same-${sigma}`), step);
    const ref = gaussianOnGridReference(sigma, 3000, seededRandomBytes(`same-${sigma}`), step);
    expect(fast).toEqual(ref);
  });

  it('leaves the random stream where the reference leaves it', () => {
    const a = seededRandomBytes('stream');
    const b = seededRandomBytes('stream');
    gaussianOnGrid(1, 5000, a);
    gaussianOnGridReference(1, 5000, b);
    expect(a(32)).toEqual(b(32));
  });
});

describe('exact samplers: values pinned before the BigInt-free fast paths (same bytes, same draws)', () => {
  // Digests of the outputs of the code before commit "privacy: grid Gaussian without BigInt per coin";
  // the algorithm and the order of the coins are unchanged, so these must not move.
  it.each([
    ['gaussianOnGrid(1), 24 576 values', () => gaussianOnGrid(1, 24576, seededRandomBytes('pin-grid')), '57fc3ac884e2ea24', [0.1017913818359375, 0.5831451416015625]],
    ['gaussianOnGrid(0.37, step 0.37/1024)', () => gaussianOnGrid(0.37, 4000, seededRandomBytes('pin-grid-2'), 0.37 / 1024), 'aac4c96d95d0e31d', [0.30423828125, -0.2240234375]],
    ['gaussianOnGrid(0.013, step 0.001)', () => gaussianOnGrid(0.013, 4000, seededRandomBytes('pin-grid-3'), 0.001), '24594a02c23b8fd2', [0.014, 0.018000000000000002]],
    ['gaussianOnGrid(1, step 2^-45) (BigInt t)', () => gaussianOnGrid(1, 200, seededRandomBytes('pin-hugeT'), 2 ** -45), '280ca2317c5003fd', [1.117040259815468, 0.167618109387206]],
    ['sampleDiscreteGaussian(9)', () => sampleDiscreteGaussian(9, 4000, seededRandomBytes('pin-dg9')), 'c6c83fbc7556dcbd', [-3, -1]],
    ['sampleDiscreteGaussian(2.5)', () => sampleDiscreteGaussian(2.5, 4000, seededRandomBytes('pin-dg25')), '650c2ac3910bb131', [1, 1]],
    ['sampleDiscreteGaussian(1e8)', () => sampleDiscreteGaussian(1e8, 2000, seededRandomBytes('pin-dg1e8')), '029ca15706c45275', [-10469, 7220]],
    ['sampleSkellam(5e4)', () => sampleSkellam(5e4, 300, seededRandomBytes('pin-sk')), 'fafe5e067a669ca1', [-407, 421]],
    ['samplePoisson(0.7)', () => samplePoisson(0.7, 2000, seededRandomBytes('pin-pois')), '1ad24a331192313a', [0, 0]],
  ] as const)('%s', (_name, draw, hash, first) => {
    const xs = draw();
    expect(Array.from(xs).slice(0, 2)).toEqual(first);
    expect(digest(xs)).toBe(hash);
  });
});
