/**
 * Per-example LoRA gradients for DP-SGD: one forward and backward pass per sequence, each
 * gradient downloaded to the host as float32 (clipping and noise happen there in float64, in
 * `privatizeGradients`). For LoRA this is small: r (dIn + dOut) values per adapted layer and
 * example, e.g. 24 576 floats for the tiny base model at r 8.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, RandomBytes } from '@fedlora/tensor';
import { privatizeGradients } from '@fedlora/privacy';
import { crossEntropy, loraRuntime, type CausalLM, type LoraConfig } from '@fedlora/model';
import { toTensors } from './trainer.js';

/**
 * The gradient of each sequence's mean next-token loss with respect to every LoRA tensor in
 * `vars`, with that sequence's loss. `dropoutSeeds[i]` seeds sequence i's LoRA dropout masks.
 */
export async function perExampleLoraGrads(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  dropoutSeeds: readonly number[],
): Promise<{ grads: NamedTensors[]; losses: number[] }> {
  if (dropoutSeeds.length !== sequences.length) throw new RangeError(`dropoutSeeds must have ${sequences.length} values, received ${dropoutSeeds.length}`);
  const names = [...vars.keys()];
  const varList = names.map((n) => vars.get(n)!);
  const grads: NamedTensors[] = [];
  const losses: number[] = [];
  for (let i = 0; i < sequences.length; i++) {
    const seq = sequences[i]!;
    const { inputs, targets } = toTensors([seq], seq.length - 1);
    const { value, grads: g } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
      const rt = loraRuntime(model, lora, new Map(names.map((n, k) => [n, xs[k]!])));
      const logits = model.forward(inputs, { lora: rt, training: true, seed: dropoutSeeds[i]! });
      return crossEntropy(logits, targets);
    })(varList);
    const host: NamedTensors = new Map();
    for (let k = 0; k < names.length; k++) host.set(names[k]!, { shape: [...g[k]!.shape], data: new Float32Array((await g[k]!.data()) as Float32Array) });
    losses.push((await value.data())[0]!);
    tf.dispose([value, inputs, targets, ...g]);
    grads.push(host);
  }
  return { grads, losses };
}

/** Options of `privateLoraGradient`. */
export interface PrivateGradientOptions {
  clipNorm: number;
  noiseMultiplier: number;
  /** q N: the sum is divided by the expected, not the realised, batch size. */
  expectedBatchSize: number;
  rng: RandomBytes;
  /** One LoRA dropout seed per sequence. */
  dropoutSeeds: readonly number[];
}

/**
 * One DP-SGD gradient (Abadi et al. 2016, Algorithm 1, lines 4-7): per-sequence gradients,
 * each clipped to `clipNorm`, summed, plus the exact grid Gaussian N(0, (z C)^2), over q N.
 */
export async function privateLoraGradient(
  model: CausalLM,
  lora: LoraConfig,
  vars: ReadonlyMap<string, tf.Variable>,
  sequences: readonly Int32Array[],
  o: PrivateGradientOptions,
): Promise<{ gradient: NamedTensors; clippedFraction: number; losses: number[] }> {
  const { grads, losses } = await perExampleLoraGrads(model, lora, vars, sequences, o.dropoutSeeds);
  const layout: NamedTensors = new Map([...vars].map(([n, v]) => [n, { shape: [...v.shape], data: new Float32Array(v.size) }]));
  const { gradient, clippedFraction } = privatizeGradients(grads, layout, { clipNorm: o.clipNorm, noiseMultiplier: o.noiseMultiplier, expectedBatchSize: o.expectedBatchSize, rng: o.rng });
  return { gradient, clippedFraction, losses };
}
