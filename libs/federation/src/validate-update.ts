import type { NamedTensors } from '@fedlora/tensor';
import { findNonFinite } from '@fedlora/tensor';
import { FederationError } from './errors.js';
import type { RoundPlan, UpdateHeader } from './types.js';
import { updateTensors } from './lora-variant.js';

/** Largest example count a client may claim (guards the FedAvg weights against absurd values). */
export const MAX_NUM_EXAMPLES = 1e9;

/**
 * Checks a client's update against the open round's plan before it touches the aggregate:
 * round and nonce, tensor names and shapes, example count, and that every value is finite.
 */
export function validateUpdate(plan: RoundPlan, header: UpdateHeader, delta: NamedTensors): void {
  if (header.round !== plan.round) {
    throw new FederationError('failed-precondition', `update is for round ${header.round}, but round ${plan.round} is open`);
  }
  if (header.nonce !== plan.nonce) {
    throw new FederationError('failed-precondition', `update nonce does not match round ${plan.round} (attempt ${plan.attempt}); it belongs to an earlier attempt`);
  }
  if (!Number.isInteger(header.numExamples) || header.numExamples < 1 || header.numExamples > MAX_NUM_EXAMPLES) {
    throw new FederationError('invalid-argument', `numExamples must be an integer in [1, ${MAX_NUM_EXAMPLES}], received ${header.numExamples}`);
  }
  if (!Number.isFinite(header.trainLoss)) {
    throw new FederationError('invalid-argument', `trainLoss must be finite, received ${header.trainLoss}`);
  }
  // The tensors the plan's LoRA variant trains (FFA-LoRA: only the B matrices).
  const carried = updateTensors(plan);
  if (delta.size !== carried.length) {
    throw new FederationError('invalid-argument', `update has ${delta.size} tensors, the plan has ${carried.length}`);
  }
  for (const { name, shape } of carried) {
    const t = delta.get(name);
    if (!t) throw new FederationError('invalid-argument', `update lacks tensor "${name}"`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new FederationError('invalid-argument', `tensor "${name}" has shape [${t.shape.join(', ')}], the plan says [${shape.join(', ')}]`);
    }
  }
  const bad = findNonFinite(delta);
  if (bad) throw new FederationError('invalid-argument', `tensor "${bad.name}" has a non-finite value at index ${bad.index}`);
}
