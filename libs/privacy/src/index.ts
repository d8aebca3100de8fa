// Secure noise samplers: exact integer arithmetic, randomness passed in (CSPRNG in production).
/** Exact discrete Gaussian N_Z(0, sigma2) (CKS 2020 Alg. 3), exact Poisson, Skellam, and Gaussian on a fine grid for floats. */
export {
  sampleDiscreteGaussian,
  samplePoisson,
  sampleSkellam,
  gaussianOnGrid,
  gaussianOnGridCounts,
  addGaussianOnGrid,
  gridSensitivity,
  DEFAULT_GRID_FRACTION,
} from './samplers.js';
/** DP-SGD clipping whose bound holds in floating point: certified clip factors and exact per-example sums on the noise grid. */
export { certifiedClipFactor, clipMargin, GridClippedSum, jsGridSumKernels, privatizeGridCounts, gridCountsToTensors } from './grid-clipped-sum.js';
/** Central DP-FedAvg's noisy sum formed in integers, and the sensitivity its grid and clip slack add. */
export type { CentralGrid } from './central-grid.js';
export { CENTRAL_CLIP_TOLERANCE, CentralGridSum, centralGrid, centralSensitivity, centralEffectiveNoiseMultiplier } from './central-grid.js';
/** One example's clip factor and squared norm, as `GridClippedSum.add` reports them. */
export type { GridContribution } from './grid-clipped-sum.js';
/** The two loops of `GridClippedSum.addRows` (JS by default; native ones must give the same bits). */
export type { GridSumKernels } from './grid-clipped-sum.js';
/** The grid Gaussian as first written (BigInt coins): the bit-for-bit oracle of gaussianOnGrid, for tests and bench/privacy.ts. */
export { gaussianOnGridReference } from './grid-gaussian-reference.js';
/** Exact Bernoulli / uniform primitives over a RandomBytes source (for other exact samplers). */
export { ExactRandom, rationalAtLeast } from './exact-bits.js';
/** Rational number type used by the exact samplers. */
export type { Rational } from './exact-bits.js';

// Clipping.
/** L2 clipping of a whole update, and quantile-based adaptive clipping (Andrew et al. 2021). */
export { clipL2, AdaptiveClipper } from './clipping.js';
/** Options of AdaptiveClipper. */
export type { AdaptiveClipperOptions } from './clipping.js';
/** Adaptive clipping for a federation: the paper's defaults, parameter resolution and z_Delta (Andrew et al. 2021, Theorem 1). */
export { ADAPTIVE_CLIPPING_DEFAULTS, resolveAdaptiveClipping, adaptiveClipperFor } from './adaptive-clipping.js';
/** Adaptive clipping request and resolved settings. */
export type { AdaptiveClippingRequest, AdaptiveClippingSettings } from './adaptive-clipping.js';

// Accounting (RDP).
/** Privacy events and the RDP accountant: compose, epsilon/delta of events, noise calibration. */
export { composeRdp, eventRdp, validateEvent, epsilonOf, deltaOf, calibrateNoise, MECHANISMS } from './accountant.js';
/** Event shapes accepted by the accountant. */
export type {
  PrivacyEvent,
  SampledGaussianEvent,
  GaussianEvent,
  DiscreteGaussianEvent,
  SkellamEvent,
  RdpCurveEvent,
  CalibrateOptions,
} from './accountant.js';
/** RDP -> (epsilon, delta) conversions, `improved` (Balle et al. 2020) by default or `classic` (Mironov 2017). */
export { rdpToEpsilon, rdpToDelta } from './conversion.js';
/** Name of an RDP conversion. */
export type { Conversion } from './conversion.js';
/** Order presets named after their sources (opacus, dp-accounting, tf-privacy). */
export { resolveOrders, ORDER_PRESETS, DEFAULT_ORDERS_PRESET } from './orders.js';
/** Single-mechanism RDP formulas (per order), each citing its paper. */
export { rdpGaussian, rdpSampledGaussian, rdpPoissonSubsampled, rdpSkellam, rdpDiscreteGaussian } from './rdp-mechanisms.js';

// Budgets.
/** A data owner's budget: refuses planned releases that would overspend. */
export { PrivacyBudget, BudgetExceededError } from './budget.js';
/** Budget options and serialised state. */
export type { PrivacyBudgetOptions, PrivacyBudgetState } from './budget.js';

// Budget first: noise calibrated to a target epsilon over the planned run.
/** The noise multiplier for a target (epsilon, delta): DP-SGD (with the grid) and DP-FedAvg, through the accountant the ledger uses; delta <= 1/units. */
export { calibrateDpSgd, calibrateDpFedAvg, assertDeltaForUnits, accountedDpSgdMultiplier, bisectNoiseMultiplier } from './calibration.js';
/** A calibration's target, result and assumptions. */
export type { NoiseCalibration, DpSgdCalibrationOptions, DpFedAvgCalibrationOptions } from './calibration.js';

// Privacy units.
/** Whose data an epsilon protects (institution, document, a field such as patient_id, sequence), and its printed label. */
export { unitLabel, validateUnit } from './privacy-unit.js';
/** A privacy unit as a ledger records it, and the record-level units of DP-SGD. */
export type { PrivacyUnit, RecordUnit } from './privacy-unit.js';

// Rounds and the ledger.
/** Round parameters -> accountant events; refusal of distributed noise without secure aggregation. */
export { roundEvents, assertDistributedNoiseIsSafe, InsecureDistributedNoiseError } from './round-events.js';
/** Recorded privacy parameters of a round (central, distributed, or DP-SGD). */
export type { RoundPrivacyParams, CentralParams, DistributedParams, DpSgdParams, AdaptiveClipRecord } from './round-events.js';
/** Append-only, hash-chained, Ed25519-signed JSONL privacy ledger. */
export { Ledger, LedgerCorruptError, repairTornTail } from './ledger.js';
/** Ledger writer identity and accounting settings. */
export type { LedgerSigner, LedgerSettings } from './ledger.js';
/** Ledger format helpers: canonical JSON, line hashes, signing keys. */
export { canonicalJson, lineHash, generateLedgerKey, ledgerKeyFromSeed, GENESIS_HASH, LEDGER_VERSION } from './ledger-format.js';
/** Ledger entry shapes. */
export type { LedgerEntry, LedgerHead, LedgerRecordInput } from './ledger-format.js';
/** Verifies chains, signatures and recomputes every epsilon from recorded parameters. */
export { verifyLedger, verifyLedgerText, verifyLedgerFile } from './ledger-verify.js';
/** The auditor's trust anchor: writer -> Ed25519 public key, written by provisioning. */
export { TRUSTED_KEYS_FILE, readTrustedKeys, writeTrustedKeys, trustedKeysJson, validateTrustedKeys, trustedKeyHex } from './trusted-keys.js';
/** A recorded release described for people (mechanism, noise), for charts and reports. */
export { describeMechanism } from './mechanism-description.js';
export type { MechanismDescription } from './mechanism-description.js';
/** Verification results. */
export type { LedgerVerification, LedgerProblem, LedgerRoundSummary, VerifyOptions } from './ledger-verify.js';

// Noise as protocols add it, the client's enforcement point, and DP-SGD helpers.
/** Central Gaussian noise on a sum (grid-exact), distributed integer noise shares, per-client variance planning. */
export { addGaussianNoiseToSum, distributedNoiseShare, perClientVariance } from './noise.js';
/** Kind of distributed integer noise. */
export type { DistributedNoise } from './noise.js';
/** A client's budget enforcement backed by its own signed ledger. */
export { ClientPrivacyGuard } from './client-guard.js';
/** Guard options and round decisions ("refused: budget"). */
export type { ClientGuardOptions, RoundDecision, RoundAnchor } from './client-guard.js';
/** Per-example LoRA gradient norms without materialising per-example gradients (ghost clipping), and clip factors. */
export { loraPerExampleGradNormsSq, loraClippedGradSums, gramProductNormSq, clipFactors } from './lora-norms.js';
/** Inputs of loraPerExampleGradNormsSq. */
export type { LoraNormInputs } from './lora-norms.js';
/** Exact Poisson samplers (small and large rates). */
export { poissonSampler, LARGE_POISSON_THRESHOLD } from './samplers.js';
/** Institution-level DP-FedAvg config -> per-round parameters (central or distributed), integer sensitivities. */
export { dpRoundParams, validateDpConfig, perClientNoiseVariance, perClientCountVariance, integerSensitivities } from './dp-fedavg.js';
/** DP-FedAvg configuration. */
export type { DpFedAvgConfig } from './dp-fedavg.js';
/** Record-level DP-SGD: clip per-example gradients, add exact grid Gaussian noise, Poisson sampling of examples. */
export { privatizeGradients, poissonSample } from './dp-sgd.js';
/** Options of privatizeGradients. */
export type { DpSgdStepOptions } from './dp-sgd.js';

export type { SamplingBasis, SamplingRecord } from './cohort-sampling-accounting.js';
export { accountedSampling, checkAccountedSampling, institutionSampling } from './cohort-sampling-accounting.js';
