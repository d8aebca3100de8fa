/**
 * The transformer blocks of the RoPE decoder families, transcribed from transformers'
 * modeling_llama.py (also Mistral, Qwen2), modeling_gemma2.py and modeling_phi3.py:
 *
 * - Llama: h += o(attn(rms(h))); h += down(silu(gate(x)) * up(x)) with x = rms(h).
 * - Phi-3: the same with fused projections: qkv_proj rows are [q | k | v], gate_up_proj rows
 *   are [gate | up].
 * - Gemma 2: RMSNorm scales by (1 + w); the attention and MLP outputs pass their own norm before
 *   the residual (post_attention_layernorm, post_feedforward_layernorm; pre_feedforward_layernorm
 *   replaces Llama's post_attention one); the MLP is GeGLU with tanh GELU; attention scores are
 *   soft-capped; even layers attend within a sliding window.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ModelConfig } from './config.js';
import { causalAttention, geluNew, mergeHeads, repeatKv, rmsNorm, silu, splitHeads } from './layers.js';
import { applyRope } from './rope.js';

/** What a block needs from the model for one pass. */
export interface BlockContext {
  b: number;
  t: number;
  /** A parameter (internal layout) by HF name. */
  p: (name: string) => tf.Tensor;
  /** x W (+ bias) (+ LoRA) for the linear module at `path`. */
  linear: (x: tf.Tensor2D, path: string, bias: boolean) => tf.Tensor2D;
  /** The additive mask for a window (0 = plain causal) and whether it is just the causal mask. */
  mask: (window: number) => { mask: tf.Tensor2D; plainCausal: boolean };
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
}

/** RMSNorm with the family's weight convention (Gemma 2 stores w and scales by 1 + w). */
export function familyNorm(c: ModelConfig, x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D {
  return rmsNorm(x, c.modelType === 'gemma2' ? tf.add(w, 1) : w, c.normEps);
}

/** One decoder block of layer `i` on h [B*T, d]. */
export function decoderBlock(c: ModelConfig, h: tf.Tensor2D, i: number, ctx: BlockContext): tf.Tensor2D {
  const { b, t, p, linear } = ctx;
  const pre = `model.layers.${i}`;
  const a = familyNorm(c, h, p(`${pre}.input_layernorm.weight`));
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  let q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D;
  if (c.modelType === 'phi3') {
    [q, k, v] = tf.split(linear(a, `${pre}.self_attn.qkv_proj`, false), [qDim, kvDim, kvDim], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  } else {
    q = linear(a, `${pre}.self_attn.q_proj`, c.attentionBias);
    k = linear(a, `${pre}.self_attn.k_proj`, c.attentionBias);
    v = linear(a, `${pre}.self_attn.v_proj`, c.attentionBias);
  }
  const qh = applyRope(splitHeads(q, b, t, c.numHeads, c.headDim), ctx.cos, ctx.sin);
  const kh = applyRope(splitHeads(k, b, t, c.numKvHeads, c.headDim), ctx.cos, ctx.sin);
  const vh = splitHeads(v, b, t, c.numKvHeads, c.headDim);
  const rep = c.numHeads / c.numKvHeads;
  const { mask, plainCausal } = ctx.mask(c.layerWindows[i]!);
  const att = causalAttention(qh, repeatKv(kh, rep), repeatKv(vh, rep), mask, { scale: c.attentionScale, softcap: c.attnLogitSoftcap, plainCausal });
  let attOut = linear(mergeHeads(att), `${pre}.self_attn.o_proj`, c.outputBias);
  if (c.modelType === 'gemma2') attOut = familyNorm(c, attOut, p(`${pre}.post_attention_layernorm.weight`));
  const r = tf.add(h, attOut) as tf.Tensor2D;

  const mlpNorm = c.modelType === 'gemma2' ? `${pre}.pre_feedforward_layernorm.weight` : `${pre}.post_attention_layernorm.weight`;
  const m = familyNorm(c, r, p(mlpNorm));
  let gate: tf.Tensor2D, up: tf.Tensor2D;
  if (c.modelType === 'phi3') {
    [gate, up] = tf.split(linear(m, `${pre}.mlp.gate_up_proj`, false), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
  } else {
    gate = linear(m, `${pre}.mlp.gate_proj`, c.mlpBias);
    up = linear(m, `${pre}.mlp.up_proj`, c.mlpBias);
  }
  const act = c.hiddenAct === 'silu' ? silu(gate) : geluNew(gate);
  let mlpOut = linear(tf.mul(act, up) as tf.Tensor2D, `${pre}.mlp.down_proj`, c.mlpBias);
  if (c.modelType === 'gemma2') mlpOut = familyNorm(c, mlpOut, p(`${pre}.post_feedforward_layernorm.weight`));
  return tf.add(r, mlpOut) as tf.Tensor2D;
}

/**
 * The ops of a model that the native kernels do not cover, so they run as composed tfjs ops
 * (each still on native element-wise and matmul kernels): one line per fallback, for the backend
 * report. Empty for GPT-2 and Llama-style models.
 */
export function nativeFallbacks(c: ModelConfig): string[] {
  const out: string[] = [];
  if (c.attnLogitSoftcap !== undefined) {
    out.push(`attention logit soft-capping (${c.attnLogitSoftcap}): the fused causal-softmax kernel has no soft-capping; attention runs as separate matmul, tanh, mask and softmax kernels`);
  }
  const windows = [...new Set(c.layerWindows.filter((w) => w > 0))];
  if (windows.length > 0) {
    out.push(`sliding-window attention (window ${windows.join(', ')}): sequences longer than the window use an explicit [T, T] mask and the unfused attention kernels`);
  }
  return out;
}
