import { seededRandomBytes, uniform01 } from '@fedlora/tensor';
import { describe, expect, it } from 'vitest';
import { clipFactors, gramProductNormSq, loraClippedGradSums, loraPerExampleGradNormsSq } from './lora-norms.js';

function randomArray(n: number, seed: string): Float32Array {
  const rng = seededRandomBytes(seed);
  return Float32Array.from({ length: n }, () => uniform01(rng) * 2 - 1);
}

/** Brute force: materialise dA_i = s * (G_i B)^T X_i and dB_i = s * G_i^T (X_i A^T), then take norms. */
function bruteForce(x: Parameters<typeof loraPerExampleGradNormsSq>[0]): { a: number[]; b: number[]; dAs: Float64Array[]; dBs: Float64Array[] } {
  const { batch, seqLen: T, dIn, dOut, rank: r, scaling: s } = x;
  const a: number[] = [];
  const b: number[] = [];
  const dAs: Float64Array[] = [];
  const dBs: Float64Array[] = [];
  for (let i = 0; i < batch; i++) {
    const dA = new Float64Array(r * dIn);
    const dB = new Float64Array(dOut * r);
    for (let t = 0; t < T; t++) {
      const xt = (d: number): number => x.inputs[(i * T + t) * dIn + d]!;
      const gt = (o: number): number => x.outputGrads[(i * T + t) * dOut + o]!;
      for (let k = 0; k < r; k++) {
        let h = 0;
        for (let d = 0; d < dIn; d++) h += xt(d) * x.a[k * dIn + d]!;
        let p = 0;
        for (let o = 0; o < dOut; o++) p += gt(o) * x.b[o * r + k]!;
        for (let d = 0; d < dIn; d++) dA[k * dIn + d] = dA[k * dIn + d]! + s * p * xt(d);
        for (let o = 0; o < dOut; o++) dB[o * r + k] = dB[o * r + k]! + s * gt(o) * h;
      }
    }
    a.push(dA.reduce((acc, v) => acc + v * v, 0));
    b.push(dB.reduce((acc, v) => acc + v * v, 0));
    dAs.push(dA);
    dBs.push(dB);
  }
  return { a, b, dAs, dBs };
}

describe('loraPerExampleGradNormsSq (ghost clipping for LoRA)', () => {
  for (const [T, label] of [
    [3, 'short sequences (ghost path for the wide factor)'],
    [40, 'long sequences (direct path)'],
  ] as const) {
    it(`matches brute-force per-example gradients: ${label}`, () => {
      const dims = { batch: 3, seqLen: T, dIn: 24, dOut: 20, rank: 4, scaling: 2 };
      const x = {
        ...dims,
        inputs: randomArray(dims.batch * T * dims.dIn, `x${T}`),
        outputGrads: randomArray(dims.batch * T * dims.dOut, `g${T}`),
        a: randomArray(dims.rank * dims.dIn, 'a'),
        b: randomArray(dims.dOut * dims.rank, 'b'),
      };
      const fast = loraPerExampleGradNormsSq(x);
      const slow = bruteForce(x);
      for (let i = 0; i < dims.batch; i++) {
        expect(fast.a[i]! / slow.a[i]!).toBeCloseTo(1, 9);
        expect(fast.b[i]! / slow.b[i]!).toBeCloseTo(1, 9);
        expect(fast.total[i]).toBeCloseTo(slow.a[i]! + slow.b[i]!, 6);
      }
    });
  }

  it('clipped gradient sums equal the sum of brute-force per-example gradients times their clip factors', () => {
    const dims = { batch: 3, seqLen: 5, dIn: 12, dOut: 10, rank: 2, scaling: 0.5 };
    const x = {
      ...dims,
      inputs: randomArray(dims.batch * dims.seqLen * dims.dIn, 'cx'),
      outputGrads: randomArray(dims.batch * dims.seqLen * dims.dOut, 'cg'),
      a: randomArray(dims.rank * dims.dIn, 'ca'),
      b: randomArray(dims.dOut * dims.rank, 'cb'),
    };
    const factors = clipFactors(loraPerExampleGradNormsSq(x).total, 0.5);
    const { dA, dB } = loraClippedGradSums(x, factors);
    const brute = bruteForce(x);
    for (let k = 0; k < dA.length; k++) expect(dA[k]).toBeCloseTo(brute.dAs.reduce((s, g, i) => s + factors[i]! * g[k]!, 0), 5);
    for (let k = 0; k < dB.length; k++) expect(dB[k]).toBeCloseTo(brute.dBs.reduce((s, g, i) => s + factors[i]! * g[k]!, 0), 5);
  });

  it('uses kept H and P from the forward/backward pass when given', () => {
    const dims = { batch: 2, seqLen: 4, dIn: 6, dOut: 5, rank: 2, scaling: 1 };
    const base = {
      ...dims,
      inputs: randomArray(2 * 4 * 6, 'kx'),
      outputGrads: randomArray(2 * 4 * 5, 'kg'),
      a: randomArray(2 * 6, 'ka'),
      b: randomArray(5 * 2, 'kb'),
    };
    const hidden = new Float32Array(2 * 4 * 2);
    const hiddenGrad = new Float32Array(2 * 4 * 2);
    for (let n = 0; n < 8; n++) {
      for (let k = 0; k < 2; k++) {
        let hv = 0;
        for (let d = 0; d < 6; d++) hv += base.inputs[n * 6 + d]! * base.a[k * 6 + d]!;
        hidden[n * 2 + k] = hv;
        let pv = 0;
        for (let o = 0; o < 5; o++) pv += base.outputGrads[n * 5 + o]! * base.b[o * 2 + k]!;
        hiddenGrad[n * 2 + k] = pv;
      }
    }
    const a = loraPerExampleGradNormsSq(base).total;
    const b = loraPerExampleGradNormsSq({ ...base, hidden, hiddenGrad }).total;
    for (let i = 0; i < 2; i++) expect(b[i]! / a[i]!).toBeCloseTo(1, 5);
  });

  it('the ghost and direct ways give the same Gram-product norm', () => {
    const u = randomArray(5 * 7, 'u');
    const v = randomArray(5 * 3, 'v');
    // p*q = 21 < T^2 (p+q) = 250 -> direct; swap roles via a long T to force ghost.
    const direct = gramProductNormSq(u, 0, 7, v, 0, 3, 5);
    const uWide = randomArray(2 * 300, 'uw');
    const vWide = randomArray(2 * 200, 'vw');
    const ghost = gramProductNormSq(uWide, 0, 300, vWide, 0, 200, 2);
    let brute = 0;
    for (let i = 0; i < 300; i++) for (let j = 0; j < 200; j++) {
      let s = 0;
      for (let t = 0; t < 2; t++) s += uWide[t * 300 + i]! * vWide[t * 200 + j]!;
      brute += s * s;
    }
    expect(ghost / brute).toBeCloseTo(1, 9);
    expect(direct).toBeGreaterThan(0);
  });

  it('clip factors scale only the examples above the clip', () => {
    expect(Array.from(clipFactors([0.25, 4, 16], 1))).toEqual([1, 0.5, 0.25]);
    expect(() => loraPerExampleGradNormsSq({ inputs: new Float32Array(1), outputGrads: new Float32Array(1), a: new Float32Array(1), b: new Float32Array(1), batch: 1, seqLen: 1, dIn: 2, dOut: 1, rank: 1, scaling: 1 })).toThrow(/inputs must have 2 values/);
  });
});
