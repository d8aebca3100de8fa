/**
 * LoRA (Hu et al. 2021) configuration, PEFT naming and initialisation. Adapters are plain
 * `NamedTensors` keyed by PEFT's saved names, e.g.
 * `base_model.model.transformer.h.0.attn.c_attn.lora_A.weight` [r, in] and `...lora_B.weight`
 * [out, r], so what we save loads in Python `peft` and what it saves loads here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { HostTensor, NamedTensors, RandomBytes } from '@fedlora/tensor';
import { uniform01 } from '@fedlora/tensor';
import type { LinearModule } from './architecture.js';
import type { CausalLM, LoraRuntime } from './causal-lm.js';

/**
 * Which LoRA matrices are trained. `lora`: A and B (Hu et al. 2021). `ffa`: FFA-LoRA (Sun et al.
 * 2024, "Improving LoRA in Privacy-preserving Federated Learning", ICLR, Section 4): A stays at
 * its (shared, random, non-zero) initialisation and only B is trained, so every client's update
 * is B_i A with the same A and the mean of the updates is exactly (mean B_i) A; the update, and
 * with it the DP noise and the secure-aggregation vector, has half the values.
 */
export type LoraVariant = 'lora' | 'ffa';

/** The variants fedlora trains. */
export const LORA_VARIANTS: readonly LoraVariant[] = ['lora', 'ffa'];

/** LoRA hyper-parameters (PEFT's `LoraConfig` subset, plus which matrices are trained). */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names matched as PEFT does: equal to the path or a `.`-separated suffix of it. */
  targetModules: string[];
  /** Default `lora` (A and B trained); `ffa` freezes A (the adapter file is the same PEFT layout either way). */
  variant?: LoraVariant;
}

/** Attention projections (Phi-3: its fused qkv_proj and o_proj), r 8, alpha 16, no dropout. */
export function defaultLoraConfig(model: Pick<CausalLM, 'config'>): LoraConfig {
  const t = model.config.modelType;
  const targets = t === 'gpt2' ? ['c_attn', 'attn.c_proj'] : t === 'phi3' ? ['qkv_proj', 'o_proj'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
  return { r: 8, alpha: 16, dropout: 0, targetModules: targets };
}

/** Checks a LoRA config, throwing TypeError/RangeError that name the field. */
export function validateLoraConfig(cfg: LoraConfig): void {
  if (!Number.isInteger(cfg.r) || cfg.r <= 0) throw new RangeError(`lora.r must be a positive integer, received ${cfg.r}`);
  if (typeof cfg.alpha !== 'number' || !(cfg.alpha > 0)) throw new RangeError(`lora.alpha must be a positive number, received ${cfg.alpha}`);
  if (typeof cfg.dropout !== 'number' || !(cfg.dropout >= 0 && cfg.dropout < 1)) {
    throw new RangeError(`lora.dropout must be in [0, 1), received ${cfg.dropout}`);
  }
  if (!Array.isArray(cfg.targetModules) || cfg.targetModules.length === 0) {
    throw new TypeError(`lora.targetModules must be a non-empty array of module names, received ${JSON.stringify(cfg.targetModules)}`);
  }
  if (cfg.variant !== undefined && !LORA_VARIANTS.includes(cfg.variant)) {
    throw new RangeError(`lora.variant must be one of ${LORA_VARIANTS.join(', ')}, received ${JSON.stringify(cfg.variant)}`);
  }
}

/** Whether training changes the adapter tensor `name` (PEFT name): every tensor for `lora`, only lora_B for `ffa`. */
export function isTrainableLoraTensor(cfg: Pick<LoraConfig, 'variant'>, name: string): boolean {
  return (cfg.variant ?? 'lora') === 'lora' || /(^|\.)lora_B(\.|$)/.test(name);
}

/** Values training changes (the dimension of an update): r (dIn + dOut) per adapted layer, r dOut with `ffa`. */
export function loraTrainableDimension(model: Pick<CausalLM, 'linears'>, cfg: LoraConfig): number {
  const ffa = (cfg.variant ?? 'lora') === 'ffa';
  return loraTargets(model, cfg).reduce((n, m) => n + cfg.r * ((ffa ? 0 : m.inFeatures) + m.outFeatures), 0);
}

/** The linear modules a config targets, in model order; throws if a target matches nothing. */
export function loraTargets(model: Pick<CausalLM, 'linears'>, cfg: LoraConfig): LinearModule[] {
  const matches = (path: string, t: string): boolean => path === t || path.endsWith(`.${t}`);
  for (const t of cfg.targetModules) {
    if (!model.linears.some((l) => matches(l.path, t))) {
      const names = [...new Set(model.linears.map((l) => l.path.split('.').slice(-2).join('.')))].join(', ');
      throw new RangeError(`lora.targetModules: "${t}" matches no linear module (available: ${names})`);
    }
  }
  return model.linears.filter((l) => cfg.targetModules.some((t) => matches(l.path, t)));
}

/** PEFT's saved name of a module's A or B matrix. */
export function peftName(path: string, which: 'A' | 'B'): string {
  return `base_model.model.${path}.lora_${which}.weight`;
}

/**
 * A fresh adapter as PEFT initialises one (`init_lora_weights=True`): A ~ kaiming_uniform(a=sqrt(5)),
 * i.e. U(-1/sqrt(in), 1/sqrt(in)), and B = 0, so the adapted model starts equal to the base.
 * FFA-LoRA keeps this A for the whole run: it is random and non-zero (with A = 0 nothing could
 * be learned through B), and in a federation the coordinator draws it once from the seed and
 * sends it to every client as part of the global adapter.
 */
export function initLoraAdapter(model: Pick<CausalLM, 'linears'>, cfg: LoraConfig, rng: RandomBytes): NamedTensors {
  validateLoraConfig(cfg);
  const out: NamedTensors = new Map();
  for (const m of loraTargets(model, cfg)) {
    const bound = 1 / Math.sqrt(m.inFeatures);
    const a = new Float32Array(cfg.r * m.inFeatures);
    for (let i = 0; i < a.length; i++) a[i] = (2 * uniform01(rng) - 1) * bound;
    out.set(peftName(m.path, 'A'), { shape: [cfg.r, m.inFeatures], data: a });
    out.set(peftName(m.path, 'B'), { shape: [m.outFeatures, cfg.r], data: new Float32Array(m.outFeatures * cfg.r) });
  }
  return out;
}

/** Checks that an adapter has exactly the tensors and shapes `cfg` implies for `model`. */
export function assertAdapterLayout(model: Pick<CausalLM, 'linears'>, cfg: LoraConfig, adapter: NamedTensors, what = 'adapter'): void {
  const expected = new Map<string, number[]>();
  for (const m of loraTargets(model, cfg)) {
    expected.set(peftName(m.path, 'A'), [cfg.r, m.inFeatures]);
    expected.set(peftName(m.path, 'B'), [m.outFeatures, cfg.r]);
  }
  for (const [name, shape] of expected) {
    const t = adapter.get(name);
    if (!t) throw new RangeError(`${what}: missing tensor "${name}"`);
    if (t.shape.join() !== shape.join()) throw new RangeError(`${what}: tensor "${name}" has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  for (const name of adapter.keys()) if (!expected.has(name)) throw new RangeError(`${what}: unexpected tensor "${name}" for targetModules ${JSON.stringify(cfg.targetModules)}`);
}

/** Uploads an adapter as the forward pass wants it; the caller disposes `modules`' tensors. */
export function loraRuntime(model: Pick<CausalLM, 'linears'>, cfg: LoraConfig, adapter: NamedTensors | Map<string, tf.Tensor>): LoraRuntime {
  const modules = new Map<string, { a: tf.Tensor2D; b: tf.Tensor2D }>();
  const up = (t: HostTensor | tf.Tensor): tf.Tensor2D => (t instanceof tf.Tensor ? t : tf.tensor2d(t.data, t.shape as [number, number])) as tf.Tensor2D;
  for (const m of loraTargets(model, cfg)) {
    const a = adapter.get(peftName(m.path, 'A'));
    const b = adapter.get(peftName(m.path, 'B'));
    if (!a || !b) throw new RangeError(`adapter: missing lora_A/lora_B for module "${m.path}"`);
    modules.set(m.path, { a: up(a), b: up(b) });
  }
  return { scale: cfg.alpha / cfg.r, dropout: cfg.dropout, modules };
}

/** Disposes the tensors of a runtime built from host tensors. */
export function disposeLoraRuntime(rt: LoraRuntime): void {
  for (const { a, b } of rt.modules.values()) {
    a.dispose();
    b.dispose();
  }
}

/**
 * Merges (sign +1) or unmerges (sign -1) an adapter into the base weights:
 * W <- W + sign * (alpha / r) * B A, applied to the internal kernel [in, out] as A^T B^T.
 */
export function mergeLoraAdapter(model: CausalLM, cfg: LoraConfig, adapter: NamedTensors, sign: 1 | -1 = 1): void {
  assertAdapterLayout(model, cfg, adapter);
  const scale = (sign * cfg.alpha) / cfg.r;
  for (const m of loraTargets(model, cfg)) {
    const name = `${m.path}.weight`;
    const a = adapter.get(peftName(m.path, 'A'))!;
    const b = adapter.get(peftName(m.path, 'B'))!;
    const merged = tf.tidy(() => {
      const delta = tf.matMul(tf.tensor2d(a.data, [cfg.r, m.inFeatures]), tf.tensor2d(b.data, [m.outFeatures, cfg.r]), true, true);
      return tf.add(model.parameters.get(name)!, tf.mul(delta, scale));
    });
    model.setParameter(name, merged);
  }
}
