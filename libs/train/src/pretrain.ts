/**
 * Training a whole model from scratch (every weight, embeddings included), as `fedlora model
 * pretrain` does for the project's tiny base model. The embedding is applied as one-hot @ E so its
 * gradient exists on every backend (see CausalLM.forward's `params`). Same optimizer, schedule and
 * clipping as `trainLocal`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { seededRandomBytes, shuffleInPlace } from '@fedlora/tensor';
import { crossEntropy, type CausalLM } from '@fedlora/model';
import { AdamW } from './adamw.js';
import { warmupCosine } from './schedule.js';
import { evaluate, toTensors, type StepInfo } from './trainer.js';

/** Options of `pretrain`. */
export interface PretrainOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number | string;
  warmupSteps?: number;
  weightDecay?: number;
  gradClipNorm?: number;
  evalData?: Int32Array[];
  evalEvery?: number;
  onStep?: (s: StepInfo) => void;
  now?: () => number;
}

/** Trains every parameter of `model` in place; returns the mean loss of the last 10% of steps. */
export async function pretrain(model: CausalLM, data: Int32Array[], opts: PretrainOptions): Promise<{ finalTrainLoss: number; evalLoss?: number; tokens: number }> {
  if (data.length === 0) throw new RangeError('pretrain: data must hold at least one sequence, received 0');
  const now = opts.now ?? (() => performance.now());
  const vars = new Map<string, tf.Variable>();
  for (const [name, t] of model.parameters) if (name !== '__head_kernel') vars.set(name, tf.variable(t.clone(), true, `pretrain/${name}`));
  const optimizer = new AdamW(vars, { weightDecay: opts.weightDecay ?? 0.01 });
  const names = [...vars.keys()];
  const list = names.map((n) => vars.get(n)!);
  const rng = seededRandomBytes(`pretrain:${opts.seed}`);
  const order: number[] = [];
  let cursor = 0;
  const seqLen = data[0]!.length - 1;
  const tail: number[] = [];
  let tokens = 0;
  let evalLoss: number | undefined;
  try {
    for (let s = 0; s < opts.steps; s++) {
      const t0 = now();
      const batch: Int32Array[] = [];
      while (batch.length < opts.batchSize) {
        if (cursor >= order.length) {
          order.length = 0;
          for (let i = 0; i < data.length; i++) order.push(i);
          shuffleInPlace(order, rng);
          cursor = 0;
        }
        batch.push(data[order[cursor++]!]!);
      }
      const { inputs, targets } = toTensors(batch, seqLen);
      const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
        const params = new Map(names.map((n, i) => [n, xs[i]!]));
        return crossEntropy(model.forward(inputs, { params }), targets);
      })(list);
      const loss = (await value.data())[0]!;
      const gm = new Map(names.map((n, i) => [n, grads[i]!]));
      const normT = tf.tidy(() => tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g))))));
      const gradNorm = (await normT.data())[0]!;
      const clip = opts.gradClipNorm ?? 1;
      if (clip > 0 && gradNorm > clip) for (const [k, g] of gm) gm.set(k, tf.mul(g, clip / (gradNorm + 1e-6)));
      const lr = warmupCosine(s, opts.steps, opts.learningRate, opts.warmupSteps ?? 0, 0.1);
      optimizer.apply(gm, lr);
      tf.dispose([value, inputs, targets, normT, ...grads, ...gm.values()]);
      tokens += opts.batchSize * seqLen;
      if (s >= Math.floor(opts.steps * 0.9)) tail.push(loss);
      const info: StepInfo = { step: s + 1, loss, tokensPerSecond: (opts.batchSize * seqLen) / Math.max(1e-9, (now() - t0) / 1000), learningRate: lr, gradNorm };
      const evalEvery = opts.evalEvery ?? 0;
      if (opts.evalData?.length && ((evalEvery > 0 && (s + 1) % evalEvery === 0) || s + 1 === opts.steps)) {
        for (const [n, v] of vars) model.setParameter(n, v.clone());
        evalLoss = (await evaluate(model, undefined, undefined, opts.evalData, { batchSize: opts.batchSize })).loss;
        info.evalLoss = evalLoss;
      }
      opts.onStep?.(info);
    }
    for (const [n, v] of vars) model.setParameter(n, v.clone());
  } finally {
    optimizer.dispose();
    for (const v of vars.values()) v.dispose();
  }
  return { finalTrainLoss: tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length), evalLoss, tokens };
}
