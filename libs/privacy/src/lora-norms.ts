/**
 * Per-example gradient norms of a LoRA linear layer without materialising per-example gradients
 * where that is cheaper ("ghost clipping": Goodfellow 2015, "Efficient per-example gradient
 * computations"; Li, Tramer, Liang, Hashimoto 2022, "Large Language Models Can Be Strong
 * Differentially Private Learners", Section 4).
 *
 * The layer is y = x W0^T + scaling * (x A^T) B^T with A: [r, dIn], B: [dOut, r]. For example i
 * with activations X_i: [T, dIn] and output gradients G_i = dL/dy: [T, dOut], let H_i = X_i A^T
 * ([T, r]) and P_i = G_i B ([T, r]). Then
 *   dB_i = scaling * G_i^T H_i  and  dA_i = scaling * P_i^T X_i,
 * and for any U: [T, p], V: [T, q], ||U^T V||_F^2 = <U U^T, V V^T>_F (sum over t, t' of
 * (u_t . u_t')(v_t . v_t')), which costs O(T^2 (p + q)) instead of O(T p q). Each factor uses the
 * cheaper of the two ways, so the result is exact either way.
 */

/** Shapes and data of one LoRA layer's inputs for a batch (row-major Float32Arrays). */
export interface LoraNormInputs {
  /** Activations entering the layer, [batch, seqLen, dIn]. */
  inputs: Float32Array;
  /** Gradients of the loss with respect to the layer output, [batch, seqLen, dOut]. */
  outputGrads: Float32Array;
  /** LoRA down-projection A, [rank, dIn]. */
  a: Float32Array;
  /** LoRA up-projection B, [dOut, rank]. */
  b: Float32Array;
  batch: number;
  seqLen: number;
  dIn: number;
  dOut: number;
  rank: number;
  /** LoRA scaling alpha / r. */
  scaling: number;
  /** Optional H = X A^T, [batch, seqLen, rank], if the forward pass kept it (saves recomputing it). */
  hidden?: Float32Array;
  /** Optional P = G B, [batch, seqLen, rank] (dL/dH / scaling), if the backward pass kept it. */
  hiddenGrad?: Float32Array;
}

/** Squared Frobenius norm of U^T V for U: [T, p], V: [T, q] (rows at the given offsets), choosing ghost or direct. */
export function gramProductNormSq(u: Float32Array | Float64Array, uOff: number, p: number, v: Float32Array | Float64Array, vOff: number, q: number, T: number): number {
  if (T * T * (p + q) < T * p * q) {
    // Ghost: sum_{t,t'} (u_t . u_t')(v_t . v_t'), symmetric so count off-diagonal pairs twice.
    let s = 0;
    for (let t = 0; t < T; t++) {
      for (let t2 = t; t2 < T; t2++) {
        let uu = 0;
        for (let k = 0; k < p; k++) uu += u[uOff + t * p + k]! * u[uOff + t2 * p + k]!;
        let vv = 0;
        for (let k = 0; k < q; k++) vv += v[vOff + t * q + k]! * v[vOff + t2 * q + k]!;
        s += (t === t2 ? 1 : 2) * uu * vv;
      }
    }
    return s;
  }
  // Direct: materialise the p x q product for this example only.
  let s = 0;
  const row = new Float64Array(q);
  for (let i = 0; i < p; i++) {
    row.fill(0);
    for (let t = 0; t < T; t++) {
      const ui = u[uOff + t * p + i]!;
      if (ui === 0) continue;
      for (let j = 0; j < q; j++) row[j] = row[j]! + ui * v[vOff + t * q + j]!;
    }
    for (let j = 0; j < q; j++) s += row[j]! * row[j]!;
  }
  return s;
}

function check(x: LoraNormInputs): void {
  const dims = { batch: x.batch, seqLen: x.seqLen, dIn: x.dIn, dOut: x.dOut, rank: x.rank };
  for (const [k, v] of Object.entries(dims)) if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be an integer >= 1, received ${v}`);
  const want: Array<[string, Float32Array, number]> = [
    ['inputs', x.inputs, x.batch * x.seqLen * x.dIn],
    ['outputGrads', x.outputGrads, x.batch * x.seqLen * x.dOut],
    ['a', x.a, x.rank * x.dIn],
    ['b', x.b, x.dOut * x.rank],
  ];
  if (x.hidden) want.push(['hidden', x.hidden, x.batch * x.seqLen * x.rank]);
  if (x.hiddenGrad) want.push(['hiddenGrad', x.hiddenGrad, x.batch * x.seqLen * x.rank]);
  for (const [k, arr, n] of want) if (arr.length !== n) throw new RangeError(`${k} must have ${n} values, received ${arr.length}`);
}

/**
 * Squared L2 norms of each example's gradient with respect to A and to B (and their sum), for
 * one LoRA layer. Sum `total` over the layers of a model to get each example's squared norm for
 * per-example clipping in DP-SGD.
 */
export function loraPerExampleGradNormsSq(x: LoraNormInputs): { a: Float64Array; b: Float64Array; total: Float64Array } {
  check(x);
  const { batch, seqLen: T, dIn, dOut, rank: r, scaling } = x;
  const outA = new Float64Array(batch);
  const outB = new Float64Array(batch);
  const h = new Float64Array(T * r);
  const p = new Float64Array(T * r);
  const s2 = scaling * scaling;
  for (let i = 0; i < batch; i++) {
    const xOff = i * T * dIn;
    const gOff = i * T * dOut;
    hiddenOf(x, i, h, p);
    outB[i] = s2 * gramProductNormSq(x.outputGrads, gOff, dOut, h, 0, r, T);
    outA[i] = s2 * gramProductNormSq(p, 0, r, x.inputs, xOff, dIn, T);
  }
  const total = new Float64Array(batch);
  for (let i = 0; i < batch; i++) total[i] = outA[i]! + outB[i]!;
  return { a: outA, b: outB, total };
}

/** Fills h = X_i A^T and p = G_i B ([T, r] each) for example i, from the inputs or the kept tensors. */
function hiddenOf(x: LoraNormInputs, i: number, h: Float64Array, p: Float64Array): void {
  const { seqLen: T, dIn, dOut, rank: r } = x;
  const off = i * T * r;
  if (x.hidden) for (let k = 0; k < T * r; k++) h[k] = x.hidden[off + k]!;
  if (x.hiddenGrad) for (let k = 0; k < T * r; k++) p[k] = x.hiddenGrad[off + k]!;
  if (x.hidden && x.hiddenGrad) return;
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < r; k++) {
      if (!x.hidden) {
        let hv = 0;
        for (let d = 0; d < dIn; d++) hv += x.inputs[(i * T + t) * dIn + d]! * x.a[k * dIn + d]!;
        h[t * r + k] = hv;
      }
      if (!x.hiddenGrad) {
        let pv = 0;
        for (let o = 0; o < dOut; o++) pv += x.outputGrads[(i * T + t) * dOut + o]! * x.b[o * r + k]!;
        p[t * r + k] = pv;
      }
    }
  }
}

/**
 * The clipped gradient sums of one LoRA layer for DP-SGD: dA = scaling * sum_i c_i P_i^T X_i and
 * dB = scaling * sum_i c_i G_i^T H_i, with c_i the per-example clip factors (from the squared
 * norms summed over all layers, `clipFactors`). Add noise with `addGaussianNoiseToSum`.
 */
export function loraClippedGradSums(x: LoraNormInputs, factors: ArrayLike<number>): { dA: Float32Array; dB: Float32Array } {
  check(x);
  if (factors.length !== x.batch) throw new RangeError(`factors must have ${x.batch} values, received ${factors.length}`);
  const { batch, seqLen: T, dIn, dOut, rank: r, scaling } = x;
  const dA = new Float64Array(r * dIn);
  const dB = new Float64Array(dOut * r);
  const h = new Float64Array(T * r);
  const p = new Float64Array(T * r);
  for (let i = 0; i < batch; i++) {
    const c = factors[i]! * scaling;
    if (c === 0) continue;
    hiddenOf(x, i, h, p);
    for (let t = 0; t < T; t++) {
      const xo = (i * T + t) * dIn;
      const go = (i * T + t) * dOut;
      for (let k = 0; k < r; k++) {
        const pk = c * p[t * r + k]!;
        const hk = c * h[t * r + k]!;
        for (let d = 0; d < dIn; d++) dA[k * dIn + d] = dA[k * dIn + d]! + pk * x.inputs[xo + d]!;
        for (let o = 0; o < dOut; o++) dB[o * r + k] = dB[o * r + k]! + hk * x.outputGrads[go + o]!;
      }
    }
  }
  return { dA: Float32Array.from(dA), dB: Float32Array.from(dB) };
}

/** Per-example clip factors min(1, C / ||g_i||) from squared norms (DP-SGD, Abadi et al. 2016, Algorithm 1). */
export function clipFactors(normsSq: ArrayLike<number>, clipNorm: number): Float64Array {
  if (!(clipNorm > 0)) throw new RangeError(`clipNorm must be > 0, received ${clipNorm}`);
  const out = new Float64Array(normsSq.length);
  for (let i = 0; i < out.length; i++) {
    const n = Math.sqrt(normsSq[i]!);
    out[i] = n > clipNorm ? clipNorm / n : 1;
  }
  return out;
}
