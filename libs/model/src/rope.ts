/**
 * Rotary position embedding (Su et al. 2021) and the frequency scalings of transformers'
 * `modeling_rope_utils.py` that this engine implements: `default`, `linear` (position
 * interpolation, Chen et al. 2023: every inverse frequency divided by `factor`), `dynamic` (NTK
 * scaling: for a sequence of T > max_position_embeddings tokens the base becomes
 * base * (factor T / max - (factor - 1))^(d / (d - 2)); shorter sequences are unscaled) and
 * `llama3` (Llama 3.1: long wavelengths divided by `factor`, short ones kept, the band between
 * interpolated smoothly). Any other `rope_type` is refused with the key and the value.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The RoPE scaling of a config (`rope_scaling`), normalised. */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

/** Parses `rope_scaling` (null/absent = default); `file` names the source in errors. */
export function parseRopeScaling(raw: unknown, file: string): RopeScaling {
  if (raw == null) return { type: 'default' };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new TypeError(`${file}: field "rope_scaling" must be an object or null, received ${JSON.stringify(raw)}`);
  const r = raw as Record<string, unknown>;
  // transformers reads `rope_type`, falling back to the legacy `type` key.
  const type = r.rope_type ?? r.type;
  const num = (key: string): number => {
    const v = r[key];
    if (typeof v !== 'number' || !(v > 0)) throw new RangeError(`${file}: field "rope_scaling.${key}" must be a positive number, received ${JSON.stringify(v)}`);
    return v;
  };
  if (type === 'default') return { type: 'default' };
  if (type === 'linear' || type === 'dynamic') {
    const factor = num('factor');
    if (factor < 1) throw new RangeError(`${file}: field "rope_scaling.factor" must be >= 1, received ${factor}`);
    return { type, factor };
  }
  if (type === 'llama3') {
    const s = {
      type,
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'),
      originalMaxPositions: num('original_max_position_embeddings'),
    } as const;
    if (!(s.highFreqFactor > s.lowFreqFactor)) {
      throw new RangeError(`${file}: field "rope_scaling.high_freq_factor" (${s.highFreqFactor}) must exceed "low_freq_factor" (${s.lowFreqFactor})`);
    }
    return s;
  }
  throw new RangeError(
    `${file}: field "rope_scaling.rope_type" ${JSON.stringify(type)} is not supported (supported: default, linear, dynamic, llama3); received rope_scaling ${JSON.stringify(raw)}`,
  );
}

/**
 * Inverse frequencies 1 / theta^(2i/d) for i < d/2, scaled as `scaling` says for a sequence of
 * `seqLen` tokens when the model was trained for `maxPositions`.
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling, seqLen: number, maxPositions: number): Float64Array {
  const half = headDim / 2;
  let base = theta;
  if (scaling.type === 'dynamic' && seqLen > maxPositions) {
    base = theta * ((scaling.factor * seqLen) / maxPositions - (scaling.factor - 1)) ** (headDim / (headDim - 2));
  }
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / base ** ((2 * i) / headDim);
  if (scaling.type === 'linear') for (let i = 0; i < half; i++) inv[i]! /= scaling.factor;
  if (scaling.type === 'llama3') {
    const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old } = scaling;
    const lowWavelen = old / low;
    const highWavelen = old / high;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[i] = f / factor;
      else if (wavelen >= highWavelen) {
        const smooth = (old / wavelen - low) / (high - low);
        inv[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  return inv;
}

/**
 * Rotary tables cos/sin [T, D] as HF's rotary embedding builds them: angle p * inv_freq formed in
 * float32 like torch, then emb = cat(freqs, freqs).
 */
export function ropeTables(t: number, headDim: number, invFreq: Float64Array): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = headDim / 2;
  const cos = new Float32Array(t * headDim);
  const sin = new Float32Array(t * headDim);
  const inv = Float32Array.from(invFreq);
  const f = new Float32Array(1);
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < half; i++) {
      f[0] = p * inv[i]!;
      const c = Math.cos(f[0]);
      const s = Math.sin(f[0]);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + half + i] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [t, headDim]), sin: tf.tensor2d(sin, [t, headDim]) };
}

/** Applies rotary position embedding to x [B, H, T, D]: x cos + rotate_half(x) sin. */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor4D {
  const d = x.shape[3];
  const [x1, x2] = tf.split(x, [d / 2, d / 2], 3);
  const rotated = tf.concat([tf.neg(x2!), x1!], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}
