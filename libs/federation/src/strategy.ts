import type { NamedTensors } from '@fedlora/tensor';
import { assertSameLayout, cloneNamed } from '@fedlora/tensor';

/**
 * A server optimizer: turns the averaged client delta into the next global adapter.
 * Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2: the averaged delta
 * Δ_t = mean_i(x_i - x_t) is treated as a pseudo-gradient step.
 */
export interface ServerStrategy {
  readonly name: string;
  /** Returns the new global adapter; must not modify its inputs. */
  apply(global: NamedTensors, averagedDelta: NamedTensors): NamedTensors;
  /** Optimizer state to checkpoint (moments), JSON-serialisable. */
  state(): { name: string; step: number; moments?: Record<string, { m: number[]; v: number[] }> };
}

/** Options of the server optimizers (defaults follow Reddi et al. 2021, Table 8 ranges). */
export interface StrategyOptions {
  name: 'fedavg' | 'fedprox' | 'fedadam' | 'fedyogi' | 'fedadagrad';
  serverLearningRate?: number;
  beta1?: number;
  beta2?: number;
  /** Adaptivity ε in Reddi et al. (τ): keeps the denominator away from zero. */
  tau?: number;
}

/** FedAvg (McMahan et al. 2017): x_{t+1} = x_t + η Δ_t, with η = 1 by default. FedProx uses it on the server. */
class FedAvgStrategy implements ServerStrategy {
  private step = 0;
  constructor(
    readonly name: string,
    private readonly lr: number,
  ) {}
  apply(global: NamedTensors, delta: NamedTensors): NamedTensors {
    assertSameLayout(global, delta, 'averaged delta');
    const out = cloneNamed(global);
    for (const [k, t] of out) {
      const d = delta.get(k)!.data;
      for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! + this.lr * d[i]!;
    }
    this.step++;
    return out;
  }
  state() {
    return { name: this.name, step: this.step };
  }
}

type AdaptiveKind = 'fedadam' | 'fedyogi' | 'fedadagrad';

/**
 * FedAdagrad / FedYogi / FedAdam, Reddi et al. 2021 Algorithm 2:
 *   m_t = β1 m_{t-1} + (1-β1) Δ_t
 *   v_t = v_{t-1} + Δ_t²                               (FedAdagrad)
 *   v_t = v_{t-1} - (1-β2) Δ_t² sign(v_{t-1} - Δ_t²)  (FedYogi)
 *   v_t = β2 v_{t-1} + (1-β2) Δ_t²                     (FedAdam)
 *   x_{t+1} = x_t + η m_t / (√v_t + τ)
 * Moments are kept in float64. Like the paper, no bias correction.
 */
class AdaptiveStrategy implements ServerStrategy {
  private step = 0;
  private readonly m = new Map<string, Float64Array>();
  private readonly v = new Map<string, Float64Array>();
  constructor(
    readonly name: AdaptiveKind,
    private readonly lr: number,
    private readonly beta1: number,
    private readonly beta2: number,
    private readonly tau: number,
  ) {}

  apply(global: NamedTensors, delta: NamedTensors): NamedTensors {
    assertSameLayout(global, delta, 'averaged delta');
    const out = cloneNamed(global);
    for (const [k, t] of out) {
      const d = delta.get(k)!.data;
      let m = this.m.get(k);
      let v = this.v.get(k);
      if (!m || !v) {
        m = new Float64Array(d.length);
        // Reddi et al. initialise v_{-1} = τ² (Algorithm 2, "v_{-1} ≥ τ²").
        v = new Float64Array(d.length).fill(this.tau * this.tau);
        this.m.set(k, m);
        this.v.set(k, v);
      }
      for (let i = 0; i < d.length; i++) {
        const g = d[i]!;
        const g2 = g * g;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * g;
        if (this.name === 'fedadagrad') v[i] = v[i]! + g2;
        else if (this.name === 'fedyogi') v[i] = v[i]! - (1 - this.beta2) * g2 * Math.sign(v[i]! - g2);
        else v[i] = this.beta2 * v[i]! + (1 - this.beta2) * g2;
        t.data[i] = t.data[i]! + (this.lr * m[i]!) / (Math.sqrt(v[i]!) + this.tau);
      }
    }
    this.step++;
    return out;
  }

  state() {
    const moments: Record<string, { m: number[]; v: number[] }> = {};
    for (const [k, m] of this.m) moments[k] = { m: Array.from(m), v: Array.from(this.v.get(k)!) };
    return { name: this.name, step: this.step, moments };
  }
}

/** Builds the server optimizer named in the config. */
export function createStrategy(opts: StrategyOptions): ServerStrategy {
  const lr = opts.serverLearningRate;
  switch (opts.name) {
    case 'fedavg':
    case 'fedprox':
      return new FedAvgStrategy(opts.name, lr ?? 1);
    case 'fedadam':
    case 'fedyogi':
    case 'fedadagrad':
      return new AdaptiveStrategy(opts.name, lr ?? 1e-2, opts.beta1 ?? 0.9, opts.beta2 ?? 0.99, opts.tau ?? 1e-3);
    default:
      throw new RangeError(`strategy: expected one of fedavg, fedprox, fedadam, fedyogi, fedadagrad, received "${String((opts as { name: unknown }).name)}"`);
  }
}
