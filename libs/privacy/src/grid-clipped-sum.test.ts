import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { certifiedClipFactor, clipMargin, GridClippedSum, jsGridSumKernels, privatizeGridCounts, type GridSumKernels } from './grid-clipped-sum.js';
import { gaussianOnGrid, gridSensitivity } from './samplers.js';

/** x = m 2^e exactly (m a BigInt) for a finite double. */
function exact(x: number): { m: bigint; e: number } {
  if (x === 0) return { m: 0n, e: 0 };
  let e = 0;
  let m = Math.abs(x);
  while (!Number.isInteger(m)) {
    m *= 2; // exact: a power-of-two scaling
    e--;
  }
  while (m > Number.MAX_SAFE_INTEGER) {
    m /= 2; // exact: m is an even integer above 2^53
    e++;
  }
  return { m: BigInt(Math.sign(x) * m), e };
}

/** Exactly sum_k x_k^2 <= c^2 (no rounding anywhere: BigInt on a common binary scale). */
function sumOfSquaresAtMost(xs: ArrayLike<number>, c: number): boolean {
  const terms = Array.from(xs, exact).concat([exact(c)]);
  const lo = Math.min(...terms.map((t) => t.e));
  const sq = (t: { m: bigint; e: number }) => (t.m << BigInt(t.e - lo)) ** 2n;
  return terms.slice(0, -1).reduce((s, t) => s + sq(t), 0n) <= sq(terms[terms.length - 1]!);
}

/** A float32 vector of d values in (-scale/2, scale/2). */
function vector(d: number, seed: string, scale: number): Float32Array {
  const rng = seededRandomBytes(seed);
  return Float32Array.from({ length: d }, () => (uniform01(rng) - 0.5) * scale);
}

const sumSq = (xs: ArrayLike<number>) => Array.from(xs).reduce((s, v) => s + v * v, 0);

describe('certifiedClipFactor', () => {
  it('never leaves a clipped gradient above C, measured exactly, for norms at, just above and far above C, huge and tiny entries', () => {
    for (const scale of [1, 2 ** 100, 2 ** -100]) {
      for (let v = 0; v < 40; v++) {
        const g = vector(1000, `adv-${scale}-${v}`, scale);
        const n = Math.sqrt(sumSq(g));
        for (const clip of [n, n * (1 + 2 ** -52), n * (1 - 2 ** -52), n * (1 - 1e-9), n / 3]) {
          const c = certifiedClipFactor(sumSq(g), g.length, clip);
          expect(sumOfSquaresAtMost(Array.from(g, (x) => c * x), clip)).toBe(true);
        }
      }
    }
  });

  it('is needed: naive min(1, C / ||g||) in floating point leaves some gradients above C', () => {
    let above = 0;
    for (let v = 0; v < 40; v++) {
      const g = vector(1000, `adv-1-${v}`, 1);
      const clip = Math.sqrt(sumSq(g)); // the float64 norm, exactly at C
      const n = Math.sqrt(sumSq(g));
      const naive = n > clip ? clip / n : 1;
      if (!sumOfSquaresAtMost(Array.from(g, (x) => naive * x), clip)) above++;
    }
    expect(above).toBeGreaterThan(0);
  });

  it('has a margin of (3 d + 16) 2^-53 and rejects bad arguments naming them', () => {
    expect(clipMargin(24_576)).toBe((3 * 24_576 + 16) * 2 ** -53);
    expect(certifiedClipFactor(0, 10, 1)).toBe(1);
    expect(certifiedClipFactor(0.25, 10, 1)).toBe(1);
    expect(certifiedClipFactor(4, 10, 1)).toBeLessThan(0.5);
    expect(() => certifiedClipFactor(Number.NaN, 10, 1)).toThrow(/normSq must be a finite number >= 0, received NaN/);
    expect(() => certifiedClipFactor(1, 10, 0)).toThrow(/clipNorm must be a finite number > 0, received 0/);
    expect(() => clipMargin(0)).toThrow(/dimension must be an integer/);
  });
});

describe('GridClippedSum', () => {
  const sizes = [600, 400];
  const clipNorm = 0.7;
  const gridStep = clipNorm * 2 ** -16;
  const examples = Array.from({ length: 6 }, (_, i) => [vector(600, `ex-${i}-a`, i + 0.5), vector(400, `ex-${i}-b`, 1e-3 * (i + 1))]);

  it('moves by exactly one example\'s integer vector K when that example is added, with ||K h|| <= C + sqrt(d) h / 2', () => {
    for (let i = 0; i < examples.length; i++) {
      const withI = new GridClippedSum(sizes, { clipNorm, gridStep });
      const without = new GridClippedSum(sizes, { clipNorm, gridStep });
      examples.forEach((e, j) => {
        withI.add(e);
        if (j !== i) without.add(e);
      });
      const alone = new GridClippedSum(sizes, { clipNorm, gridStep });
      alone.add(examples[i]!);
      const diff = withI.counts.map((c, t) => c.map((k, q) => k - without.counts[t]![q]!));
      expect(diff).toEqual(alone.counts); // integer sums: exact
      const k2 = alone.counts.reduce((s, c) => s + sumSq(c), 0);
      const d = 1000;
      expect(Math.sqrt(k2) * gridStep).toBeLessThanOrEqual(clipNorm + (Math.sqrt(d) * gridStep) / 2);
      expect(Math.sqrt(k2) * gridStep).toBeLessThanOrEqual(gridSensitivity(clipNorm, d, gridStep));
    }
  });

  it('reports the factor and the float64 squared norm of each example', () => {
    const s = new GridClippedSum(sizes, { clipNorm, gridStep });
    const r = s.add(examples[5]!);
    expect(r.normSq).toBe(sumSq(examples[5]![0]!) + sumSq(examples[5]![1]!));
    expect(r.factor).toBeCloseTo(clipNorm / Math.sqrt(r.normSq), 10);
    expect(s.add(examples[0]!.map((t) => t.map((x) => x * 1e-6))).factor).toBe(1);
    expect(s.examples).toBe(2);
  });

  it('refuses shapes that do not match, non-finite gradients and batches that could overflow exact integers', () => {
    const s = new GridClippedSum(sizes, { clipNorm, gridStep });
    expect(() => s.add([new Float32Array(600)])).toThrow(/must have 2 tensors, received 1/);
    expect(() => s.add([new Float32Array(600), new Float32Array(3)])).toThrow(/tensor 1 of an example has 3 values, expected 400/);
    expect(() => s.add([Float32Array.of(...new Array<number>(599).fill(0), Number.POSITIVE_INFINITY), new Float32Array(400)])).toThrow(/non-finite gradient/);
    const tiny = new GridClippedSum([1], { clipNorm: 1, gridStep: 2 ** -50 });
    tiny.add([Float32Array.of(1)]);
    expect(() => { for (let i = 0; i < 10; i++) tiny.add([Float32Array.of(1)]); }).toThrow(/could overflow exact integer sums; use a coarser grid or a smaller batch/);
  });
});

describe('GridClippedSum.addRows (a batch of examples as rows of typed arrays)', () => {
  const sizes = [600, 400];
  const clipNorm = 0.7;
  const gridStep = 2 ** -17; // a power of two, so that example 5's values are float32 ties exactly
  const rows = 7;
  // Row u of each tensor is example u; example 3 is scaled so far down that it is not clipped, example 5 lands on grid ties.
  const parts = sizes.map((n, t) => {
    const x = vector(rows * n, `rows-${t}`, 2);
    x.subarray(3 * n, 4 * n).forEach((v, k, a) => (a[k] = v * 1e-7));
    x.subarray(5 * n, 6 * n).forEach((_, k, a) => (a[k] = ((k % 9) - 4 + 0.5) * gridStep));
    return x;
  });
  const sameBits = (a: Float64Array, b: Float64Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

  it('gives the counts, norms and factors of add() called on each row in order, bit for bit', () => {
    const one = new GridClippedSum(sizes, { clipNorm, gridStep });
    const byAdd = Array.from({ length: rows }, (_, u) => one.add(parts.map((p, t) => p.subarray(u * sizes[t]!, (u + 1) * sizes[t]!))));
    const batch = new GridClippedSum(sizes, { clipNorm, gridStep });
    batch.add(parts.map((p, t) => p.subarray(0, sizes[t]!))); // a sum already holding an example continues from it
    const rest = new GridClippedSum(sizes, { clipNorm, gridStep });
    const r = rest.addRows(parts, rows);
    expect(sameBits(r.normsSq, Float64Array.from(byAdd, (c) => c.normSq))).toBe(true);
    expect(sameBits(r.factors, Float64Array.from(byAdd, (c) => c.factor))).toBe(true);
    expect(r.factors[3]).toBe(1);
    expect(r.factors[5]).toBe(1);
    const ties = new GridClippedSum(sizes, { clipNorm, gridStep });
    ties.addRows(parts.map((p, t) => p.subarray(5 * sizes[t]!, 6 * sizes[t]!)), 1);
    expect(Array.from(ties.counts[0]!.subarray(0, 9))).toEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5]); // (j + 1/2) rounds up, as Math.round
    expect(r.factors.filter((f) => f < 1).length).toBeGreaterThan(3);
    rest.counts.forEach((c, t) => expect(sameBits(c, one.counts[t]!)).toBe(true));
    expect(rest.examples).toBe(rows);
    batch.addRows(parts.map((p, t) => p.subarray(sizes[t]!)), rows - 1);
    batch.counts.forEach((c, t) => expect(sameBits(c, one.counts[t]!)).toBe(true));
  });

  it('runs its loops in the kernels given', () => {
    const calls: string[] = [];
    const spy: GridSumKernels = {
      rowsSumSquares: (...a) => (calls.push(`squares ${a[1]}`), jsGridSumKernels.rowsSumSquares(...a)),
      gridRoundAccumulate: (...a) => (calls.push(`round ${a[1]}`), jsGridSumKernels.gridRoundAccumulate(...a)),
    };
    new GridClippedSum(sizes, { clipNorm, gridStep }).addRows(parts, rows, spy);
    expect(calls).toEqual(['squares 600', 'squares 400', 'round 600', 'round 400']);
  });

  it('refuses a wrong number of tensors or values, non-float32 rows and non-finite gradients, adding nothing', () => {
    const s = new GridClippedSum(sizes, { clipNorm, gridStep });
    expect(() => s.addRows([parts[0]!], rows)).toThrow(/must have 2 tensors, received 1/);
    expect(() => s.addRows([parts[0]!, parts[1]!.subarray(1)], rows)).toThrow(/tensor 1 must hold 7 x 400 values, received 2799/);
    expect(() => s.addRows([Float64Array.from(parts[0]!) as unknown as Float32Array, parts[1]!], rows)).toThrow(TypeError);
    const inf = Float32Array.from(parts[1]!);
    inf[2 * 400 + 5] = Number.NaN;
    expect(() => s.addRows([parts[0]!, inf], rows)).toThrow(/example 2 has a non-finite gradient/);
    expect(s.examples).toBe(0);
    expect(s.counts.every((c) => c.every((k) => k === 0))).toBe(true);
  });
});

describe('privatizeGridCounts', () => {
  it('adds the grid Gaussian of gaussianOnGrid (same bytes) to the integer counts, then scales', () => {
    const counts = [Float64Array.of(3, -2, 0, 7), Float64Array.of(1)];
    const sigma = 0.5;
    const h = sigma * 2 ** -16;
    const got = privatizeGridCounts(counts, { sigma, gridStep: h, rng: seededRandomBytes('pg'), divisor: 4 });
    const rng = seededRandomBytes('pg');
    const want = counts.map((c) => {
      const z = gaussianOnGrid(sigma, c.length, rng, h);
      return Float32Array.from(c, (k, i) => ((k + Math.round(z[i]! / h)) * h) / 4);
    });
    expect(got).toEqual(want);
  });
});
