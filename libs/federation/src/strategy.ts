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
  /** Optimizer state to checkpoint (the step and, for the adaptive optimizers, the moments). */
  state(): StrategyState;
  /** Continues from a checkpointed state (after a restart); throws RangeError if it is another optimizer's. */
  restore(state: StrategyState): void;
}

/** A server optimizer's state: what FedAdam/FedYogi/FedAdagrad need to continue exactly. */
export interface StrategyState {
  name: string;
  /** Rounds applied so far. */
  step: number;
  /** First and second moments per tensor, float64 (absent for FedAvg/FedProx). */
  moments?: Record<string, { m: Float64Array; v: Float64Array }>;
}

function assertStateOf(name: string, state: StrategyState): void {
  if (state.name !== name) throw new RangeError(`server optimizer state: expected the state of ${name}, received the state of ${state.name}; the strategy must not change across a restart`);
  if (!Number.isInteger(state.step) || state.step < 0) throw new RangeError(`server optimizer state: step must be an integer >= 0, received ${state.step}`);
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
  state(): StrategyState {
    return { name: this.name, step: this.step };
  }
  restore(state: StrategyState): void {
    assertStateOf(this.name, state);
    this.step = state.step;
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
      if (m && m.length !== d.length) throw new RangeError(`server optimizer state: tensor "${k}" has ${m.length} moments, the update has ${d.length} values`);
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

  state(): StrategyState {
    const moments: Record<string, { m: Float64Array; v: Float64Array }> = {};
    for (const [k, m] of this.m) moments[k] = { m: Float64Array.from(m), v: Float64Array.from(this.v.get(k)!) };
    return { name: this.name, step: this.step, moments };
  }

  restore(state: StrategyState): void {
    assertStateOf(this.name, state);
    this.m.clear();
    this.v.clear();
    for (const [k, { m, v }] of Object.entries(state.moments ?? {})) {
      if (m.length !== v.length) throw new RangeError(`server optimizer state: tensor "${k}" has ${m.length} first and ${v.length} second moments`);
      this.m.set(k, Float64Array.from(m));
      this.v.set(k, Float64Array.from(v));
    }
    this.step = state.step;
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
