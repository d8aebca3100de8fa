/**
 * Every LoRA layer's input and output gradient from ONE batched forward and backward pass: what
 * per-example LoRA gradients are made of, without a backward pass per example. For the rows of
 * example i, with H = X A^T and P = G B,
 *   dB_i = s G_i^T H_i  and  dA_i = s P_i^T X_i
 * (s = alpha / r), so per-example norms and clipped sums follow from X and G (ghost clipping:
 * Li, Tramer, Liang, Hashimoto 2022, "Large Language Models Can Be Strong Differentially Private
 * Learners", Section 4; book-keeping: Bu et al. 2023, "Differentially Private Optimization on
 * Large Model at Small Cost", Section 3). See libs/privacy lora-norms.ts for the norms and sums.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ForwardOptions, LoraRuntime, LoraTap } from './causal-lm.js';
import { valueAndGradsFrugal } from './backprop.js';

/** One adapted linear's view of a batched pass. */
export interface LoraLayerTrace {
  /** LoRA input X = drop(x), [B*T, dIn] (rows in batch-major order, as `forward` flattens ids). */
  input: tf.Tensor2D;
  /** G = dL/dy, [B*T, dOut]: the loss's gradient with respect to the layer's output. */
  outputGrad: tf.Tensor2D;
}

/** Result of `loraLayerTraces`; the caller owns every tensor (`disposeLoraTraces`). */
export interface LoraTraces {
  /** The loss value. */
  loss: tf.Scalar;
  /** Per adapted module path, in the runtime's order. */
  layers: Map<string, LoraLayerTrace>;
}

/**
 * Runs `loss(model.forward(ids))` with LoRA `runtime` once forward and once backward, and returns
 * for every adapted linear its LoRA input and its output gradient. The LoRA tensors get no
 * gradient here: callers form per-example (or clipped) gradients from the traces. Pass the same
 * `training`/`seed` as a training step so the recorded X carries the same dropout masks.
 */
export function loraLayerTraces(
  model: CausalLM,
  ids: tf.Tensor2D,
  runtime: LoraRuntime,
  loss: (logits: tf.Tensor2D) => tf.Scalar,
  opts: Pick<ForwardOptions, 'training' | 'seed'> = {},
): LoraTraces {
  const paths = [...runtime.modules.keys()];
  if (paths.length === 0) throw new RangeError('loraLayerTraces: the LoRA runtime adapts no module; check lora.targetModules');
  const rows = ids.shape[0] * ids.shape[1];
  const probes = paths.map((p) => zeroProbe(rows, runtime.modules.get(p)!.b.shape[0]));
  const inputs = new Map<string, tf.Tensor2D>();
  try {
    const { value, grads } = valueAndGradsFrugal((...zs: tf.Tensor[]) => {
      const tap: LoraTap = { probes: new Map(paths.map((p, i) => [p, zs[i]!])), inputs };
      return loss(model.forward(ids, { ...opts, lora: runtime, loraTap: tap }));
    })(probes);
    const layers = new Map<string, LoraLayerTrace>();
    paths.forEach((p, i) => {
      const input = inputs.get(p);
      if (!input) throw new Error(`loraLayerTraces: the forward pass did not reach LoRA module "${p}"`);
      layers.set(p, { input, outputGrad: grads[i] as tf.Tensor2D });
    });
    return { loss: value, layers };
  } catch (err) {
    for (const t of inputs.values()) t.dispose();
    throw err;
  } finally {
    tf.dispose(probes);
  }
}

/** Zeros that the cpu backend's probes view (grown as needed; nothing writes a tensor's values). */
let zeros = new Float32Array(0);

/**
 * A zero probe [rows, cols]. On the cpu backend (the native kernels' host) a tensor keeps the
 * array it is given, so every probe views one shared zero buffer: a DP-SGD step otherwise fills
 * and frees rows x dOut fresh floats per adapted layer (32 MB a step for fedlora-tiny at batch 64).
 */
function zeroProbe(rows: number, cols: number): tf.Tensor2D {
  if (tf.getBackend() !== 'cpu') return tf.zeros([rows, cols]);
  if (zeros.length < rows * cols) zeros = new Float32Array(rows * cols);
  return tf.tensor2d(zeros.subarray(0, rows * cols), [rows, cols]);
}

/** Frees the tensors of `loraLayerTraces`' result. */
export function disposeLoraTraces(t: LoraTraces): void {
  t.loss.dispose();
  for (const l of t.layers.values()) tf.dispose([l.input, l.outputGrad]);
}
