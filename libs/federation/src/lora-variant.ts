/**
 * Which adapter tensors travel in a round. With plain LoRA every tensor is trained, sent and
 * averaged; with FFA-LoRA (Sun et al. 2024, "Improving LoRA in Privacy-preserving Federated
 * Learning", ICLR, Section 4) every A stays at the shared random initialisation the coordinator
 * drew and sent as part of the global adapter, and only the B tensors are trained, sent and
 * averaged. Since A is the same for every client, the average of the updates (mean_i B_i) A
 * equals mean_i (B_i A) exactly, while averaging A and B separately (plain LoRA) does not.
 *
 * The variant travels in the plan as `training.lora.variant` (with the rest of the LoRA config).
 * `plan.tensors` announces the whole global adapter (what a client downloads, A included); an
 * update carries `updateTensors(plan)`, the part of it the variant trains. Each client checks
 * the plan's variant before it trains (`checkPlanLayout`).
 */
import type { NamedTensors } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import type { PlannedLora, RoundPlan, TensorLayout } from './types.js';

/** `lora`: A and B are trained and sent; `ffa`: only B (A frozen and shared). */
export type LoraVariant = 'lora' | 'ffa';

const VARIANTS: readonly LoraVariant[] = ['lora', 'ffa'];

/** Whether a tensor of the adapter (PEFT name, or a bare `lora_A`/`lora_B`) is trained and sent under `variant`. */
export function travelsInUpdate(variant: LoraVariant, name: string): boolean {
  return variant === 'lora' || /(^|\.)lora_B(\.|$)/.test(name);
}

/** The LoRA variant of a plan's LoRA settings (default `lora`); RangeError for anything else. */
export function loraVariantOf(lora: PlannedLora | undefined, round: number): LoraVariant {
  const v: unknown = lora?.variant;
  if (v === undefined) return 'lora';
  if (typeof v !== 'string' || !VARIANTS.includes(v as LoraVariant)) {
    throw new RangeError(`round ${round}: the plan's lora.variant must be one of ${VARIANTS.join(', ')}, received ${JSON.stringify(v)}`);
  }
  return v as LoraVariant;
}

/** The plan's LoRA variant (default `lora`). */
export function plannedLoraVariant(plan: RoundPlan): LoraVariant {
  return loraVariantOf(plan.training?.lora, plan.round);
}

/** Names and shapes of the tensors an update holds under `variant`, in the adapter's order. */
export function updateLayout(adapter: NamedTensors, variant: LoraVariant): TensorLayout[] {
  return layoutFor([...adapter].map(([name, t]) => ({ name, shape: [...t.shape] })), variant);
}

/** The tensors of the plan's global adapter that an update carries (all for `lora`, the B matrices for `ffa`), in plan order. */
export function updateTensors(plan: RoundPlan): TensorLayout[] {
  return layoutFor(plan.tensors, plannedLoraVariant(plan));
}

function layoutFor(all: readonly TensorLayout[], variant: LoraVariant): TensorLayout[] {
  const layout = variant === 'lora' ? [...all] : all.filter((t) => travelsInUpdate(variant, t.name));
  if (layout.length === 0) throw new RangeError(`the adapter has no tensor that a ${variant} update carries (${all.slice(0, 3).map((t) => t.name).join(', ')}...)`);
  return layout;
}

/** Values of an update under the plan (what is clipped, noised and securely summed). */
export function updateDimension(layout: readonly TensorLayout[]): number {
  return layout.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * The client's check of a plan's LoRA variant before it trains: a known variant, and with
 * `ffa` a global adapter in which every trained B has its frozen A (the plan's tensors are the
 * downloaded adapter's, whose hash the client has checked). Returns the variant.
 */
export function checkPlanLayout(plan: RoundPlan, global: NamedTensors): LoraVariant {
  try {
    const variant = plannedLoraVariant(plan);
    const carried = updateTensors(plan);
    if (variant === 'ffa') {
      for (const { name } of carried) {
        const a = name.replace(/(^|\.)lora_B(\.|$)/, '$1lora_A$2');
        if (!global.has(a)) throw new RangeError(`round ${plan.round}: lora.variant ffa trains "${name}" but the global adapter has no frozen "${a}" for it`);
      }
    }
    return variant;
  } catch (err) {
    throw new FederationError('invalid-argument', (err as Error).message);
  }
}

/**
 * A client's update for `plan`: local - global for the tensors the plan lists, nothing else.
 * Tensors the plan does not list (FFA-LoRA's A) must come back from training bit for bit; a
 * trainer that changed one trained another variant than the plan's, and is refused.
 */
export function planUpdate(plan: RoundPlan, local: NamedTensors, global: NamedTensors): NamedTensors {
  const carried = updateTensors(plan);
  const listed = new Set(carried.map((t) => t.name));
  for (const [name, g] of global) {
    if (listed.has(name)) continue;
    const l = local.get(name);
    if (!l || l.data.length !== g.data.length || l.data.some((v, i) => !Object.is(v, g.data[i]))) {
      throw new RangeError(`round ${plan.round}: training changed "${name}", which lora.variant ${plannedLoraVariant(plan)} keeps frozen: the trainer's LoRA config does not match the plan`);
    }
  }
  const out: NamedTensors = new Map();
  for (const { name, shape } of carried) {
    const l = local.get(name);
    const g = global.get(name);
    if (!l || !g) throw new RangeError(`round ${plan.round}: tensor "${name}" of the plan is missing from the ${l ? 'global' : 'trained'} adapter`);
    out.set(name, { shape: [...shape], data: Float32Array.from(l.data, (v, i) => v - g.data[i]!) });
  }
  return out;
}

/**
 * The averaged update over the whole adapter, for the server optimizer: tensors the round did
 * not carry (FFA-LoRA's A) get a zero delta.
 */
export function fullDelta(global: NamedTensors, delta: NamedTensors): NamedTensors {
  const out: NamedTensors = new Map();
  for (const [name, t] of global) out.set(name, delta.get(name) ?? { shape: [...t.shape], data: new Float32Array(t.data.length) });
  return out;
}
