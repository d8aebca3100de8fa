/**
 * AdamW (Loshchilov & Hutter 2019, Algorithm 2) over tfjs variables, with the update order of
 * torch.optim.AdamW: p <- p (1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
 * p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 */
import * as tf from '@tensorflow/tfjs-core';

/** AdamW hyper-parameters (torch defaults). */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** Moments and step count, exportable for resuming. */
export interface AdamWState {
  step: number;
  m: Map<string, Float32Array>;
  v: Map<string, Float32Array>;
}

/** AdamW over a fixed set of named variables; owns its moment tensors. */
export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private t = 0;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;

  constructor(
    private readonly params: Map<string, tf.Variable>,
    opts: AdamWOptions = {},
    state?: AdamWState,
  ) {
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.wd = opts.weightDecay ?? 0.01;
    for (const [name, p] of params) {
      const m0 = state?.m.get(name);
      const v0 = state?.v.get(name);
      if (state && (!m0 || !v0)) throw new RangeError(`AdamW state lacks moments for "${name}"`);
      this.m.set(name, tf.variable(m0 ? tf.tensor(m0, p.shape) : tf.zerosLike(p), false));
      this.v.set(name, tf.variable(v0 ? tf.tensor(v0, p.shape) : tf.zerosLike(p), false));
    }
    this.t = state?.step ?? 0;
  }

  /** Applies one update with learning rate `lr`; grads are keyed like the params. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.t++;
    const bc1 = 1 - this.b1 ** this.t;
    const bc2 = 1 - this.b2 ** this.t;
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) throw new RangeError(`AdamW.apply: no gradient for "${name}"`);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, this.b1), tf.mul(g, 1 - this.b1)));
        v.assign(tf.add(tf.mul(v, this.b2), tf.mul(tf.square(g), 1 - this.b2)));
        const denom = tf.add(tf.sqrt(tf.div(v, bc2)), this.eps);
        const update = tf.div(tf.div(m, bc1), denom);
        p.assign(tf.sub(tf.mul(p, 1 - lr * this.wd), tf.mul(update, lr)));
      }
    });
  }

  /** Copies the moments to host memory (for checkpoints). */
  async state(): Promise<AdamWState> {
    const m = new Map<string, Float32Array>();
    const v = new Map<string, Float32Array>();
    for (const name of this.params.keys()) {
      m.set(name, (await this.m.get(name)!.data()) as Float32Array);
      v.set(name, (await this.v.get(name)!.data()) as Float32Array);
    }
    return { step: this.t, m, v };
  }

  /** Frees the moment tensors (not the parameters). */
  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
