/**
 * AdamW (Loshchilov & Hutter 2019, Algorithm 2) over tfjs variables, with the update order of
 * torch.optim.AdamW: p <- p (1 - lr wd); m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
 * p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 * Each parameter's step is one fused native kernel on the native cpu path and the same float32
 * arithmetic from tfjs ops elsewhere (`adamwUpdate`, bit-identical on both).
 */
import * as tf from '@tensorflow/tfjs-core';
import { adamwUpdate } from '@fedlora/native-cpu';

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
      // A variable shares its initial tensor's data: dispose the initial tensor, keep the variable.
      const mInit = m0 ? tf.tensor(m0, p.shape) : tf.zerosLike(p);
      const vInit = v0 ? tf.tensor(v0, p.shape) : tf.zerosLike(p);
      this.m.set(name, tf.variable(mInit, false));
      this.v.set(name, tf.variable(vInit, false));
      tf.dispose([mInit, vInit]);
    }
    this.t = state?.step ?? 0;
  }

  /**
   * Applies one update with learning rate `lr`; grads are keyed like the params and multiplied by
   * `gradScale` first (the trainer folds micro-batch averaging and clipping in here).
   */
  apply(grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    for (const name of this.params.keys()) {
      if (!grads.has(name)) throw new RangeError(`AdamW.apply: no gradient for "${name}"`);
    }
    this.t++;
    const hyper = { lr, beta1: this.b1, beta2: this.b2, eps: this.eps, weightDecay: this.wd, step: this.t, gradScale };
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const [p1, m1, v1] = adamwUpdate(p, grads.get(name)!, m, v, hyper);
        p.assign(p1);
        m.assign(m1);
        v.assign(v1);
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
