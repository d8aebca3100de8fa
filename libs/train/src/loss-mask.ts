/**
 * Loss masks inside token sequences. Instruction tuning trains only on completion (assistant)
 * tokens; the prompt is context. A training sequence stays an Int32Array of seqLen + 1 tokens
 * (inputs t_0..t_{T-1}, targets t_1..t_T) and a target that must not be trained on is stored as
 * the negative value -id - 1 (PyTorch's `ignore_index` idea, kept inside the sequence so that
 * every code path that moves sequences around, shuffling, Poisson sampling, splitting, carries
 * the mask with it). The position is still fed to the model as token `id`. `toTensors` and
 * `padBatch` decode it into ids, targets and 0/1 loss weights; the losses divide by the weights'
 * sum, so a masked token contributes exactly zero to the loss and its gradient. Plain packed text
 * has no negative value and is unchanged.
 */

/** The stored value of token `id` whose prediction is masked out of the loss. */
export function maskedId(id: number): number {
  return -id - 1;
}

/** The token id of a stored value (masked or not). */
export function tokenIdOf(v: number): number {
  return v < 0 ? -v - 1 : v;
}

/** The token ids of a sequence with its mask removed. */
export function tokenIds(seq: ArrayLike<number>): Int32Array {
  return Int32Array.from({ length: seq.length }, (_, i) => tokenIdOf(seq[i]!));
}

/** Number of trained targets of a sequence: positions 1.. that are not masked. */
export function trainedTargets(seq: ArrayLike<number>): number {
  let n = 0;
  for (let i = 1; i < seq.length; i++) if (seq[i]! >= 0) n++;
  return n;
}

/** True when some sequence holds a masked target (position >= 1). */
export function hasLossMask(batch: readonly ArrayLike<number>[]): boolean {
  return batch.some((s) => {
    for (let i = 1; i < s.length; i++) if (s[i]! < 0) return true;
    return false;
  });
}

/**
 * A sequence of `ids` whose targets are trained only where `train[i]` is true (i >= 1; position 0
 * is never a target).
 */
export function withLossMask(ids: ArrayLike<number>, train: ArrayLike<boolean>): Int32Array {
  if (ids.length !== train.length) throw new RangeError(`ids and train must have equal lengths, received ${ids.length} and ${train.length}`);
  return Int32Array.from({ length: ids.length }, (_, i) => {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`token ids must be non-negative integers, received ${id} at ${i}`);
    return i > 0 && !train[i] ? maskedId(id) : id;
  });
}
