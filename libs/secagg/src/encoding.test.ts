import { describe, expect, it } from 'vitest';
import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { chooseEncodingParams, clipL2, conditionalStochasticRound, decodeAverage, encodeUpdate, plannedAverageNoiseStd } from './encoding.js';

function randomUpdate(d: number, seed: string, scale = 0.01): Float32Array {
  const rng = seededRandomBytes(seed);
  return Float32Array.from({ length: d }, () => (uniform01(rng) - 0.5) * scale);
}

function modularSum(vectors: Uint32Array[]): Uint32Array {
  const s = new Uint32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < s.length; i++) s[i] += v[i]!;
  return s;
}

describe('chooseEncodingParams', () => {
  it('fills the bit width: more clients or noise means a smaller scale', () => {
    const base = chooseEncodingParams({ n: 10, d: 1000, clip: 1 });
    expect(base.paddedDim).toBe(1024);
    expect(chooseEncodingParams({ n: 100, d: 1000, clip: 1 }).scale).toBeLessThan(base.scale);
    expect(chooseEncodingParams({ n: 10, d: 1000, clip: 1, noiseStddevPerClient: 0.1 }).scale).toBeLessThan(base.scale);
    expect(chooseEncodingParams({ n: 10, d: 1000, clip: 1, bits: 20 }).scale).toBeLessThan(base.scale);
  });

  it('refuses a bit width too small for the cohort', () => {
    expect(() => chooseEncodingParams({ n: 1000, d: 1000, clip: 1, bits: 4 })).toThrow(/more bits/);
  });
});

describe('encode / decode', () => {
  const seed = seededRandomBytes('enc-rot')(32);

  it('clips to the L2 bound', () => {
    const x = new Float64Array([3, 4]);
    expect(clipL2(x, 1)).toBe(5);
    expect(x[0]).toBeCloseTo(0.6, 12);
    expect(x[1]).toBeCloseTo(0.8, 12);
  });

  it('stochastic rounding is unbiased and respects the norm bound', () => {
    const rng = seededRandomBytes('csr');
    const trials = 4000;
    let mean = 0;
    for (let t = 0; t < trials; t++) {
      const x = new Float64Array([0.3, -1.75]);
      conditionalStochasticRound(x, 100, rng);
      mean += x[0]! / trials;
    }
    expect(mean).toBeCloseTo(0.3, 1);
    expect(() => conditionalStochasticRound(new Float64Array([10.5]), 1, rng, 5)).toThrow(/norm bound/);
  });

  it('secure-path average equals the plain average of clipped updates within 1e-3 (d = 100k, n = 10, clip 1)', () => {
    const n = 10;
    const d = 100_000;
    const params = chooseEncodingParams({ n, d, clip: 1 });
    const updates = Array.from({ length: n }, (_, i) => randomUpdate(d, `u${i}`, i === 0 ? 0.1 : 0.005));
    const rng = seededRandomBytes('enc-round');
    const encoded = updates.map((u) => encodeUpdate(u, params, { rotationSeed: seed, rng }));
    const avg = decodeAverage(modularSum(encoded), n, params, seed);
    let maxErr = 0;
    for (let j = 0; j < d; j++) {
      let plain = 0;
      for (const u of updates) plain += u[j]!;
      maxErr = Math.max(maxErr, Math.abs(avg[j]! - plain / n));
    }
    // update 0 has norm ~ 0.1 * sqrt(d / 12) ~ 9 > 1 and is clipped: compare with the clipped plain average.
    const clipped = updates.map((u) => {
      const x = Float64Array.from(u);
      clipL2(x, 1);
      return x;
    });
    let maxErrClipped = 0;
    for (let j = 0; j < d; j++) {
      let plain = 0;
      for (const u of clipped) plain += u[j]!;
      maxErrClipped = Math.max(maxErrClipped, Math.abs(avg[j]! - plain / n));
    }
    expect(maxErr).toBeGreaterThan(1e-3); // without clipping the averages really differ
    expect(maxErrClipped).toBeLessThan(1e-3);
  });

  it('noise shares add up: the decoded noise of the sum has the planned standard deviation', () => {
    const n = 5;
    const d = 4096;
    const sigma = 0.01;
    const params = chooseEncodingParams({ n, d, clip: 1, noiseStddevPerClient: sigma });
    const noiseRng = seededRandomBytes('noise');
    // A stand-in integer noise share (rounded Box-Muller; tests only, never privacy noise): std ~ noiseStddevInt.
    const noise = (len: number) => {
      const out = new Int32Array(len);
      const std = params.noiseStddevInt;
      for (let i = 0; i < len; i++) {
        const u1 = uniform01(noiseRng) || 1e-12;
        const u2 = uniform01(noiseRng);
        out[i] = Math.round(std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
      }
      return out;
    };
    const zero = new Float32Array(d);
    const rng = seededRandomBytes('enc-noise');
    const sum = modularSum(Array.from({ length: n }, () => encodeUpdate(zero, params, { rotationSeed: seed, rng, noise })));
    const avg = decodeAverage(sum, n, params, seed);
    let s2 = 0;
    for (const v of avg) s2 += v * v;
    const measured = Math.sqrt(s2 / d);
    const planned = plannedAverageNoiseStd(params, n);
    expect(planned).toBeCloseTo((sigma * Math.sqrt(n)) / n, 12);
    expect(Math.abs(measured / planned - 1)).toBeLessThan(0.05);
  });

  it('wraps modulo 2^b for b < 32 and still decodes', () => {
    const n = 3;
    const d = 500;
    const params = chooseEncodingParams({ n, d, clip: 1, bits: 24 });
    const updates = Array.from({ length: n }, (_, i) => randomUpdate(d, `b${i}`));
    const rng = seededRandomBytes('enc-bits');
    const encoded = updates.map((u) => encodeUpdate(u, params, { rotationSeed: seed, rng }));
    for (const e of encoded) for (const w of e) expect(w).toBeLessThan(2 ** 24);
    const avg = decodeAverage(modularSum(encoded), n, params, seed);
    for (let j = 0; j < d; j++) expect(Math.abs(avg[j]! - (updates[0]![j]! + updates[1]![j]! + updates[2]![j]!) / n)).toBeLessThan(1e-4);
  });

  it('validates lengths', () => {
    const params = chooseEncodingParams({ n: 2, d: 10, clip: 1 });
    expect(() => encodeUpdate(new Float32Array(9), params, { rotationSeed: seed, rng: seededRandomBytes('x') })).toThrow(/params.dim is 10/);
    expect(() => decodeAverage(new Uint32Array(8), 1, params, seed)).toThrow(/paddedDim is 16/);
  });
});
