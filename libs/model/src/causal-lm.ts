/**
 * A decoder-only causal language model (GPT-2, or the RoPE decoders of decoder-blocks.ts) on tfjs, with frozen base
 * weights and optional LoRA adapters applied on the fly: h = x W + b + (alpha / r) * drop(x) A^T B^T
 * (Hu et al. 2021, eq. 3). Base weights are uploaded once and never copied per step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@fedlora/tensor';
import { linear as linearOp, nativeKernelsActive } from '@fedlora/native-cpu';
import type { ModelConfig } from './config.js';
import { parameterLayout, type LinearModule } from './architecture.js';
import type { TextTokenizer } from './tokenizer.js';
import { causalAttention, causalMask, geluNew, layerNorm, mergeHeads, slidingWindowMask, softcap, splitHeads } from './layers.js';
import { decoderBlock, familyNorm, nativeFallbacks, type BlockContext } from './decoder-blocks.js';
import { ropeInverseFrequencies, ropeTables } from './rope.js';

/** Internal name of a tied model's cached E^T (see CausalLM.transposedHead). */
const HEAD_KERNEL = '__head_kernel';

/** LoRA tensors as the forward pass uses them, keyed by module path. */
export interface LoraRuntime {
  /** alpha / r. */
  scale: number;
  /** Dropout probability on the LoRA input (training only). */
  dropout: number;
  /** A [r, in] and B [out, r], PEFT's layout. */
  modules: Map<string, { a: tf.Tensor2D; b: tf.Tensor2D }>;
}

/** Options of one forward pass. */
export interface ForwardOptions {
  lora?: LoraRuntime;
  /** Applies LoRA dropout. */
  training?: boolean;
  /** Seed of this pass's dropout masks (tfjs' seeded uniform). */
  seed?: number;
  /**
   * Replaces base parameters (internal layout, see `internalWeights`), e.g. trainable variables
   * when pretraining; the embedding is then applied as one-hot @ E so it has a gradient on every
   * backend (wasm lacks UnsortedSegmentSum, the gradient of gather).
   */
  params?: Map<string, tf.Tensor>;
  /** Exposes every LoRA layer's input and output gradient (per-example clipping); see `LoraTap`. */
  loraTap?: LoraTap;
}

/**
 * What per-example LoRA gradients need from one batched pass (ghost clipping, Li et al. 2022,
 * Section 4): for each adapted linear, its LoRA input X = drop(x) [B*T, dIn] and the gradient
 * G = dL/dy [B*T, dOut] of the loss with respect to its output. X is recorded during the forward
 * pass; G is the gradient with respect to `probes`, zero tensors [B*T, dOut] that the forward
 * pass adds to the LoRA branch output (y + 0 = y, so results are unchanged). Use it through
 * `loraLayerTraces` (lora-tap.ts), which owns the probes and the recorded tensors.
 */
export interface LoraTap {
  /** Per module path: a zero [B*T, dOut] added to that layer's LoRA output; differentiate with respect to it. */
  probes: ReadonlyMap<string, tf.Tensor>;
  /** Filled by the forward pass: per module path, X [B*T, dIn], kept outside every tidy (the tap's owner disposes it). */
  inputs: Map<string, tf.Tensor2D>;
}

/** A loaded causal LM: configuration, tokenizer, frozen weights. */
export class CausalLM {
  /** Linear layers in order, with HF paths and shapes. */
  readonly linears: LinearModule[];
  private readonly weights: Map<string, tf.Tensor>;
  private readonly masks = new Map<string, tf.Tensor2D>();
  private readonly ropes = new Map<number, { cos: tf.Tensor2D; sin: tf.Tensor2D }>();
  private disposed = false;

  constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    hfWeights: NamedTensors,
  ) {
    this.linears = parameterLayout(config).linears;
    this.weights = new Map();
    for (const [name, t] of internalWeights(config, hfWeights)) this.weights.set(name, tf.tensor(t.data, t.shape));
  }

  /** The base weights in internal layout (kernels [in, out]); read-only by convention. */
  get parameters(): ReadonlyMap<string, tf.Tensor> {
    return this.weights;
  }

  /** Logits [B*T, vocab] for token ids [B, T] (T <= maxPositions). Caller owns the result. */
  forward(ids: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    if (this.disposed) throw new Error('CausalLM.forward: model was disposed');
    const [b, t] = ids.shape;
    // Dynamic NTK RoPE exists to run past max_position_embeddings; every other model stops there.
    if (t > this.config.maxPositions && this.config.ropeScaling.type !== 'dynamic') {
      throw new RangeError(`forward: sequence length must be <= ${this.config.maxPositions}, received ${t}`);
    }
    const mask = this.mask(t, 0);
    return tf.tidy(() => {
      const p = (name: string): tf.Tensor => {
        const v = opts.params?.get(name) ?? this.weights.get(name);
        if (!v) throw new Error(`CausalLM: no parameter "${name}"`);
        return v;
      };
      let dropCount = 0;
      const linear = (x: tf.Tensor2D, path: string, bias: boolean): tf.Tensor2D => {
        // The bias, and the LoRA branch, ride in the products: on the native path each product is
        // one _FusedMatMul adding its "bias" operand in place (linearOp; matMul + add elsewhere).
        let extra: tf.Tensor | undefined = bias ? p(`${path}.bias`) : undefined;
        const l = opts.lora?.modules.get(path);
        if (l) {
          let xin = x;
          if (opts.training && opts.lora!.dropout > 0) {
            const keep = 1 - opts.lora!.dropout;
            const u = tf.randomUniform(x.shape, 0, 1, 'float32', (opts.seed ?? 0) * 1009 + dropCount++);
            xin = tf.mul(x, tf.div(tf.cast(tf.less(u, keep), 'float32'), keep));
          }
          // Scale the [N, r] product, not the [N, out] one; A and B are used in PEFT's layout as
          // transposed operands (a BLAS flag natively, an explicit transpose on wasm). The base
          // bias is added to the [N, out] LoRA output, which is then the base product's bias.
          let low = linearOp(tf.mul(tf.matMul(xin, l.a, false, true), opts.lora!.scale) as tf.Tensor2D, l.b, extra, true);
          const tap = opts.loraTap;
          if (tap) {
            const probe = tap.probes.get(path);
            if (probe) low = tf.add(low, probe) as tf.Tensor2D;
            // A clone: the frugal backward pass disposes the matMul's saved copy of xin.
            tap.inputs.get(path)?.dispose();
            tap.inputs.set(path, tf.keep(tf.clone(xin)) as tf.Tensor2D);
          }
          extra = low;
        }
        return linearOp(x, p(`${path}.weight`) as tf.Tensor2D, extra);
      };
      const flat = tf.reshape(ids, [b * t]) as tf.Tensor1D;
      const embName = this.config.modelType === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
      const emb = p(embName) as tf.Tensor2D;
      const trainEmb = opts.params?.has(embName) ?? false;
      let h: tf.Tensor2D = trainEmb
        ? tf.matMul(tf.oneHot(tf.cast(flat, 'int32'), this.config.vocabSize), emb)
        : (tf.gather(emb, tf.cast(flat, 'int32')) as tf.Tensor2D);
      h = this.config.modelType === 'gpt2' ? this.gpt2(h, b, t, p, linear, mask) : this.decoder(h, b, t, p, linear);
      let logits: tf.Tensor2D;
      if (!this.config.tieWordEmbeddings) logits = tf.matMul(h, p('lm_head.weight') as tf.Tensor2D);
      // Tied head h E^T: BLAS takes E transposed as a flag, so the native path needs no copy of E;
      // elsewhere a kept E^T avoids transposing [V, d] on every pass (wasm has no transposed matmul).
      else if (trainEmb || nativeKernelsActive()) logits = tf.matMul(h, emb, false, true);
      else logits = tf.matMul(h, this.transposedHead(emb));
      const cap = this.config.finalLogitSoftcap;
      return cap === undefined ? logits : (softcap(logits, cap) as tf.Tensor2D);
    });
  }

  private gpt2(
    x: tf.Tensor2D,
    b: number,
    t: number,
    p: (n: string) => tf.Tensor,
    linear: (x: tf.Tensor2D, path: string, bias: boolean) => tf.Tensor2D,
    mask: tf.Tensor2D,
  ): tf.Tensor2D {
    const c = this.config;
    const pos = tf.slice(p('transformer.wpe.weight'), [0, 0], [t, c.hiddenSize]);
    let h = tf.reshape(tf.add(tf.reshape(x, [b, t, c.hiddenSize]), pos), [b * t, c.hiddenSize]) as tf.Tensor2D;
    for (let i = 0; i < c.numLayers; i++) {
      const pre = `transformer.h.${i}`;
      // One tidy per block: intermediates the backward pass does not need (it keeps its own
      // saved copies) are freed now rather than at the end of the whole forward pass.
      h = tf.tidy(() => {
        const a = layerNorm(h, p(`${pre}.ln_1.weight`), p(`${pre}.ln_1.bias`), c.normEps);
        const qkv = linear(a, `${pre}.attn.c_attn`, true);
        const [q, k, v] = tf.split(qkv, 3, 1).map((z) => splitHeads(z, b, t, c.numHeads, c.headDim));
        const att = mergeHeads(causalAttention(q!, k!, v!, mask));
        const r = tf.add(h, linear(att, `${pre}.attn.c_proj`, true)) as tf.Tensor2D;
        const m = layerNorm(r, p(`${pre}.ln_2.weight`), p(`${pre}.ln_2.bias`), c.normEps);
        const inner = geluNew(linear(m, `${pre}.mlp.c_fc`, true)) as tf.Tensor2D;
        return tf.add(r, linear(inner, `${pre}.mlp.c_proj`, true)) as tf.Tensor2D;
      });
    }
    return layerNorm(h, p('transformer.ln_f.weight'), p('transformer.ln_f.bias'), c.normEps);
  }

  private decoder(x: tf.Tensor2D, b: number, t: number, p: (n: string) => tf.Tensor, linear: BlockContext['linear']): tf.Tensor2D {
    const c = this.config;
    const rope = this.ropeTables(t);
    const ctx: BlockContext = {
      b,
      t,
      p,
      linear,
      // A window at least T long masks nothing beyond causality: the plain (fusable) causal mask.
      mask: (w) => (w === 0 || w >= t ? { mask: this.mask(t, 0), plainCausal: true } : { mask: this.mask(t, w), plainCausal: false }),
      cos: tf.slice(rope.cos, [0, 0], [t, c.headDim]),
      sin: tf.slice(rope.sin, [0, 0], [t, c.headDim]),
    };
    let h = c.embeddingScale === undefined ? x : (tf.mul(x, c.embeddingScale) as tf.Tensor2D);
    for (let i = 0; i < c.numLayers; i++) {
      // One tidy per block, as in gpt2().
      h = tf.tidy(() => decoderBlock(c, h, i, ctx));
    }
    return familyNorm(c, h, p('model.norm.weight'));
  }

  /** The ops of this model that the native kernels do not cover (composed tfjs ops instead). */
  nativeFallbacks(): string[] {
    return nativeFallbacks(this.config);
  }

  /** E^T of a tied model, made on first use off the native path and kept in sync by setParameter. */
  private transposedHead(emb: tf.Tensor2D): tf.Tensor2D {
    let k = this.weights.get(HEAD_KERNEL) as tf.Tensor2D | undefined;
    if (!k) {
      k = tf.keep(tf.transpose(emb)); // cached across calls, possibly created inside a caller's tidy
      this.weights.set(HEAD_KERNEL, k);
    }
    return k;
  }

  /** The additive mask for T tokens: causal (window 0) or sliding-window; cached. */
  private mask(t: number, window: number): tf.Tensor2D {
    const key = `${t}:${window}`;
    let m = this.masks.get(key);
    if (!m) {
      m = tf.keep(window === 0 ? causalMask(t) : slidingWindowMask(t, window)); // cached across calls, possibly created inside a caller's tidy
      this.masks.set(key, m);
    }
    return m;
  }

  /**
   * Rotary tables covering T positions: one table of maxPositions rows serves every T up to it;
   * dynamic NTK scaling past it depends on T, so each longer T gets its own table.
   */
  private ropeTables(t: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    const c = this.config;
    const rows = t > c.maxPositions ? t : c.maxPositions;
    let r = this.ropes.get(rows);
    if (!r) {
      const inv = ropeInverseFrequencies(c.headDim, c.ropeTheta, c.ropeScaling, rows, c.maxPositions);
      const made = ropeTables(rows, c.headDim, inv);
      r = { cos: tf.keep(made.cos), sin: tf.keep(made.sin) };
      this.ropes.set(rows, r);
    }
    return r;
  }

  /** Replaces one internal parameter (used by merge/unmerge and pretraining); disposes the old tensor. */
  setParameter(name: string, value: tf.Tensor): void {
    const old = this.weights.get(name);
    if (!old) throw new RangeError(`setParameter: no parameter "${name}"`);
    if (old.shape.join() !== value.shape.join()) throw new RangeError(`setParameter: "${name}" has shape [${old.shape}], received [${value.shape}]`);
    old.dispose();
    this.weights.set(name, tf.keep(value));
    if (name === 'transformer.wte.weight' || name === 'model.embed_tokens.weight') {
      if (this.config.tieWordEmbeddings && this.weights.has(HEAD_KERNEL)) this.setParameter(HEAD_KERNEL, tf.transpose(value));
    }
  }

  /** The weights in Hugging Face layout (host copies), e.g. to save the model. */
  async hostWeights(): Promise<NamedTensors> {
    const out: NamedTensors = new Map();
    for (const [name, shape] of parameterLayout(this.config).tensors) {
      const lin = this.linears.find((l) => `${l.path}.weight` === name);
      const t = this.weights.get(name)!;
      const hf = (lin && !lin.fanInFanOut) || name === 'lm_head.weight' ? tf.transpose(t) : t;
      out.set(name, { shape, data: (await hf.data()) as Float32Array });
      if (hf !== t) hf.dispose();
    }
    return out;
  }

  /** Frees every tensor the model holds. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.weights.values()) t.dispose();
    for (const t of this.masks.values()) t.dispose();
    for (const r of this.ropes.values()) tf.dispose([r.cos, r.sin]);
  }
}

/**
 * HF-layout host weights to the internal layout: Linear weights [out, in] become kernels [in, out]
 * (a tied model's head is E itself, used as a transposed operand).
 */
export function internalWeights(config: ModelConfig, hf: NamedTensors): NamedTensors {
  const layout = parameterLayout(config);
  const linearByWeight = new Map(layout.linears.map((l) => [`${l.path}.weight`, l]));
  const out: NamedTensors = new Map();
  for (const [name, shape] of layout.tensors) {
    const t = hf.get(name);
    if (!t) throw new RangeError(`weights lack tensor "${name}"`);
    const lin = linearByWeight.get(name);
    out.set(name, lin && !lin.fanInFanOut ? transposeHost(t.data, shape[0]!, shape[1]!) : t);
  }
  if (!config.tieWordEmbeddings && out.has('lm_head.weight')) {
    out.set('lm_head.weight', transposeHost(out.get('lm_head.weight')!.data, config.vocabSize, config.hiddenSize));
  }
  return out;
}

function transposeHost(data: Float32Array, rows: number, cols: number): { shape: number[]; data: Float32Array } {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j]!;
  return { shape: [cols, rows], data: out };
}
