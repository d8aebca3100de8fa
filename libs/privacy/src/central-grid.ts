import type { NamedTensors } from '@fedlora/tensor';
import { clipMargin } from './grid-clipped-sum.js';
import { DEFAULT_GRID_FRACTION } from './samplers.js';

/**
 * Central DP-FedAvg's noisy sum, formed in integers, and the sensitivity that form really has.
 *
 * The coordinator adds N(0, (z C)^2) per coordinate exactly, as a discrete Gaussian on the grid
 * h Z (Canonne, Kamath, Steinke 2020; h = z C 2^-16). For the output to be a function of the
 * noisy sum alone it must be formed from integers: each update is rounded to the grid, K_i =
 * round(Delta_i / h), the integer counts are summed exactly, the integer noise Z is added, and
 * only then is (K + Z) h / n computed — never fl(K h) + fl(Z h), whose low bits depend on K and
 * Z separately (Mironov 2012's attack on floating-point noise). This is how the distributed
 * discrete Gaussian (Kairouz, Liu, Steinke 2021, "The Distributed Discrete Gaussian Mechanism for
 * Federated Learning with Secure Aggregation", ICML, Section 4) and Skellam (Agarwal, Kairouz, Liu
 * 2021, "The Skellam Mechanism for Differentially Private Federated Learning", NeurIPS, Section 4)
 * mechanisms treat their integer sums; they also show what rounding costs: moving each of d
 * coordinates by less than one grid step adds up to sqrt(d) h to the L2 sensitivity (KLS21,
 * Section 4, the deterministic bound with beta = 0). Here:
 *
 *   ||K_i h|| <= ||Delta_i|| + sqrt(d) h / 2   (round to nearest, per coordinate),
 *
 * and a neighbouring federation differs by one update, so with sum-then-round (the secure path,
 * where only the sum is known) the bound is ||Delta|| + sqrt(d) h. The coordinator accepts
 * updates with a computed norm up to C (1 + CENTRAL_CLIP_TOLERANCE) (float32 rounding on the
 * client), and the float64 norm it computes may be below the true one by the factor (1 +
 * clipMargin(d)) (grid-clipped-sum.ts). So the sensitivity accounted is
 *
 *   Delta_2 = C (1 + CENTRAL_CLIP_TOLERANCE) (1 + clipMargin(d)) + sqrt(d) h,
 *
 * i.e. the release is the Gaussian mechanism with noise multiplier z' = z C / Delta_2 (about
 * 0.25% below z at d = 24,576, z = 1). The ledger records d, h and the tolerance
 * (CentralParams.grid) and `roundEvents` accounts z', so the audit recomputes it.
 */

/** Relative slack on the coordinator's norm check of a central-mode update: ||Delta|| <= C (1 + this). */
export const CENTRAL_CLIP_TOLERANCE = 1e-4;

/** What a central round's ledger entry records about its grid, so that z' can be recomputed. */
export interface CentralGrid {
  /** Values d of an update. */
  dimension: number;
  /** Grid step h of the noise and of the rounded updates. */
  gridStep: number;
  /** Relative slack of the norm check (CENTRAL_CLIP_TOLERANCE). */
  clipTolerance: number;
  /**
   * Central noise behind secure aggregation: the L2 an update's integer encoding may add,
   * sqrt(d') / scale for d' encoded values at integer scale `scale` (each rounded by < 1; KLS21,
   * Section 4, beta = 0). Absent without secure aggregation.
   */
  encodingL2?: number;
}

/** The grid of a central round with noise multiplier z, clip C and d values: h = z C 2^-16. */
export function centralGrid(noiseMultiplier: number, clipNorm: number, dimension: number, encoding?: { scale: number }): CentralGrid {
  if (!(noiseMultiplier > 0) || !(clipNorm > 0)) throw new RangeError(`central grid: noiseMultiplier and clipNorm must be > 0, received ${noiseMultiplier}, ${clipNorm}`);
  clipMargin(dimension); // validates d
  if (encoding && !(encoding.scale > 0)) throw new RangeError(`central grid: the encoding scale must be > 0, received ${encoding.scale}`);
  return {
    dimension,
    gridStep: noiseMultiplier * clipNorm * DEFAULT_GRID_FRACTION,
    clipTolerance: CENTRAL_CLIP_TOLERANCE,
    ...(encoding ? { encodingL2: Math.sqrt(dimension) / encoding.scale } : {}),
  };
}

/** Delta_2 = C (1 + tolerance) (1 + clipMargin(d)) + sqrt(d) h (+ encodingL2 behind secure aggregation): the L2 sensitivity of the integer-formed noisy sum (see above). */
export function centralSensitivity(clipNorm: number, grid: CentralGrid): number {
  if (!(grid.gridStep > 0) || !(grid.clipTolerance >= 0)) throw new RangeError(`central grid: gridStep must be > 0 and clipTolerance >= 0, received ${grid.gridStep}, ${grid.clipTolerance}`);
  return clipNorm * (1 + grid.clipTolerance) * (1 + clipMargin(grid.dimension)) + Math.sqrt(grid.dimension) * grid.gridStep + (grid.encodingL2 ?? 0);
}

/** z' = z C / Delta_2: the noise multiplier a central round with this grid really has. */
export function centralEffectiveNoiseMultiplier(noiseMultiplier: number, clipNorm: number, grid: CentralGrid): number {
  return (noiseMultiplier * clipNorm) / centralSensitivity(clipNorm, grid);
}

/**
 * Integer grid counts of a sum of updates, K = sum_i round(Delta_i / h), exact in float64 while
 * the counts stay below 2^52 (checked). Tensors in the order of `layout`.
 */
export class CentralGridSum {
  readonly counts: Float64Array[];
  private readonly names: string[];
  private maxAbs = 0;

  constructor(
    layout: NamedTensors | readonly { name: string; shape: readonly number[] }[],
    readonly gridStep: number,
  ) {
    if (!(gridStep > 0) || !Number.isFinite(gridStep)) throw new RangeError(`gridStep must be a finite number > 0, received ${gridStep}`);
    const entries = layout instanceof Map ? [...layout].map(([name, t]) => ({ name, shape: t.shape })) : layout;
    this.names = entries.map((t) => t.name);
    this.counts = entries.map((t) => new Float64Array(t.shape.reduce((a, b) => a * b, 1)));
  }

  /** Adds round(x / h) of every value of `tensors` (one update, or a sum known only as a whole). */
  add(tensors: ReadonlyMap<string, { data: ArrayLike<number> }>): void {
    this.names.forEach((name, t) => {
      const x = tensors.get(name);
      const acc = this.counts[t]!;
      if (!x || x.data.length !== acc.length) throw new RangeError(`tensor ${name}: expected ${acc.length} values, received ${x?.data.length ?? 'none'}`);
      for (let i = 0; i < acc.length; i++) {
        const k = Math.round(x.data[i]! / this.gridStep);
        if (!Number.isFinite(k)) throw new RangeError(`tensor ${name}[${i}] is not finite`);
        acc[i] = acc[i]! + k;
        const a = Math.abs(acc[i]!);
        if (a > this.maxAbs) this.maxAbs = a;
      }
    });
    // Z is below 2^40 grid steps in practice; keep K + Z an exact integer.
    if (this.maxAbs > 2 ** 51) throw new RangeError(`grid counts reached ${this.maxAbs}: the sum would no longer be exact; use a coarser grid`);
  }
}
