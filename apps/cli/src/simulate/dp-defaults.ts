/**
 * Training defaults of `fedlora simulate` when record-level DP-SGD is on (issue 12: a private model
 * that still improves at epsilon <= 8 per document).
 *
 * Why they differ from the non-private defaults (15 steps of 8 sequences per round, lr 3e-3): at a
 * fixed (epsilon, delta) the noise on the summed gradient of a run, relative to its signal, is
 * about z / (q N sqrt(T)) for N units, Poisson rate q and T noisy steps; with privacy
 * amplification by subsampling (Abadi et al. 2016, Section 3.1; Mironov et al. 2019 for the
 * sampled Gaussian's RDP) a moderate q over many units needs a smaller z than q = 1 over few, so
 * the same compute per step (about `batchSize` sequences) buys a less noisy run. Batches of a
 * hundred or more units and a few steps per round follow De et al. 2022 ("Unlocking high-accuracy
 * differentially private image classification through scale", Sections 3-4: large batches, few
 * steps) and Li et al. 2022 ("Large language models can be strong differentially private
 * learners", Section 3: large batch, small clip). The simulated institutions have many documents
 * (simulate's --chars-per-client default), which is what makes this work.
 *
 * `maxSequencesPerUnit` 1: a sampled document contributes one of its sequences, drawn uniformly
 * (the trainer's per-unit cap, unbiased), so a step costs about `batchSize` sequences while the
 * sensitivity is still one clipped document.
 *
 * The learning rate is tuned to the noise, not only to the data: Adam moves each coordinate by about
 * lr x m / sqrt(v), and with z ~ 0.57 the noise fills v, so only about lr x SNR of each step is
 * signal. Measured (README, Privacy): lr 0.05 diverges (with plain LoRA and with FFA-LoRA), and so
 * does lr 0.03 with almost no noise (z 0.05), where each step becomes a sign step of lr on every
 * value. A batch of 320 (z ~ 0.68, 1.7x the signal-to-noise per step) keeps more at the same lr:
 * 60-86% of the non-private improvement in six runs of plain LoRA (67, 83, 86, 84, 65 and, in the
 * idle demo, 60%), against 51-73% over eight runs at 160; since the faster DP-SGD step (main
 * 87262f2) a run at 320 costs about the CPU a run at 160 cost before, and the whole demo ran in 80 s idle.
 *
 * The guarantee is unchanged: the unit stays the document, every step is accounted, and the noise
 * is calibrated to spend the budget over the planned rounds. Any of these given on the command
 * line wins; the values used are printed on stderr.
 */
export const DP_SGD_SIMULATE_DEFAULTS = {
  /** Expected units (documents) per step: q = min(1, batchSize / units). */
  batchSize: 320,
  localSteps: 3,
  learningRate: 0.03,
  maxSequencesPerUnit: 1,
  /**
   * Seconds (with --secagg). The simulated institutions share one process: while they train, the
   * heartbeats that show they are alive wait for turns of the event loop between DP-SGD passes, so
   * on a loaded machine the liveness window (3 stage timeouts, at least 30 s) must be longer.
   */
  stageTimeout: 60,
} as const;

export type DpSgdDefaultKey = keyof typeof DP_SGD_SIMULATE_DEFAULTS;

/** The options the defaults fill, each with its default's type. */
export type DpSgdDefaultOptions = { -readonly [K in DpSgdDefaultKey]?: (typeof DP_SGD_SIMULATE_DEFAULTS)[K] extends number ? number : string };

/**
 * The simulate options with the DP-SGD defaults in place of every value the user did not give
 * (`given(key)` false), and a one-line description of what was applied (empty when nothing was).
 */
export function applyDpSgdDefaults<T extends DpSgdDefaultOptions>(o: T, given: (key: DpSgdDefaultKey) => boolean): { options: T; applied: string } {
  const out: Record<string, unknown> = { ...o };
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
  return `--batch-size ${d.batchSize} --local-steps ${d.localSteps} --lr ${d.learningRate} --dp-sgd-max-sequences ${d.maxSequencesPerUnit} --stage-timeout ${d.stageTimeout}`;
}
