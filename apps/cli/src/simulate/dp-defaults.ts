/**
 * Training defaults of `fedlora simulate` when record-level DP-SGD is on (issue 12: a private model
 * that still improves at epsilon <= 8 per document).
 *
 * Why they differ from the non-private defaults (15 steps of 8 sequences per round, lr 3e-3):
 * at a fixed (epsilon, delta) the signal-to-noise ratio of DP-SGD grows with the number of units N
 * and shrinks with the number of noisy steps T; with little amplification (epsilon 8 over a few
 * hundred documents) it pays to take few steps with large expected batches (Poisson rate q close
 * to 1) and a larger learning rate, clipping every unit's gradient to a small C so the clipped sum
 * is a sum of nearly normalised gradients (De et al. 2022, "Unlocking high-accuracy differentially
 * private image classification through scale", §3-4: large batches, few steps; Li et al. 2022,
 * "Large language models can be strong differentially private learners", §3: large batch, full
 * learning rate, small clip). The guarantee is unchanged: the unit stays the document, every step
 * is accounted, and the noise is calibrated to spend the budget over the planned rounds.
 *
 * `maxSequencesPerUnit` 1: a sampled document contributes one of its sequences, drawn uniformly
 * (the per-unit cap of the trainer, unbiased); this keeps a full-batch step as cheap as a batch of
 * one sequence per document while the sensitivity is still one clipped document.
 *
 * Any of these given on the command line wins; the values used are printed on stderr.
 */
export const DP_SGD_SIMULATE_DEFAULTS = {
  /** Expected units (documents) per step: q = min(1, batchSize / units). */
  batchSize: 400,
  localSteps: 1,
  learningRate: 0.02,
  maxSequencesPerUnit: 1,
} as const;

export type DpSgdDefaultKey = keyof typeof DP_SGD_SIMULATE_DEFAULTS;

/**
 * The simulate options with the DP-SGD defaults in place of every value the user did not give
 * (`given(key)` false), and a one-line description of what was applied (empty when nothing was).
 */
export function applyDpSgdDefaults<T extends Partial<Record<DpSgdDefaultKey, number>>>(o: T, given: (key: DpSgdDefaultKey) => boolean): { options: T; applied: string } {
  const out: Partial<Record<DpSgdDefaultKey, number>> = { ...o };
  const applied: string[] = [];
  for (const key of Object.keys(DP_SGD_SIMULATE_DEFAULTS) as DpSgdDefaultKey[]) {
    if (given(key)) continue;
    out[key] = DP_SGD_SIMULATE_DEFAULTS[key];
    applied.push(`${key} ${DP_SGD_SIMULATE_DEFAULTS[key]}`);
  }
  return { options: out as T, applied: applied.join(', ') };
}

/** The defaults as `simulate` flags (quoted in the README and printed by simulate). */
export function dpSgdDefaultsFlags(): string {
  const d = DP_SGD_SIMULATE_DEFAULTS;
  return `--batch-size ${d.batchSize} --local-steps ${d.localSteps} --lr ${d.learningRate} --dp-sgd-max-sequences ${d.maxSequencesPerUnit}`;
}
