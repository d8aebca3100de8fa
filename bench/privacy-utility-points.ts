/**
 * The points of `bench privacy-utility` and how each becomes a `fedlora simulate` command line and,
 * from that command's `--json` report, a point of the curves. Each point is the user's own command:
 * record-level DP-SGD is `simulate ... --dp-sgd-epsilon E` with no training flag, so simulate's
 * DP-SGD defaults apply (apps/cli/src/simulate/dp-defaults.ts); the no-DP point is the same command
 * without the budget (simulate's ordinary defaults); institution-level DP-FedAvg is the same command
 * with `--dp-mode central --dp-epsilon E`. Same seed, same data, same held-out documents throughout.
 */
import type { SimulationReport } from '@fedlora/cli';

/** One point of the curves. */
export interface PrivacyUtilityPoint {
  unit: 'record' | 'institution' | 'none';
  variant: 'lora' | 'ffa';
  /** Target epsilon at `delta`; null: no DP. */
  epsilon: number | null;
  /** Epsilon the ledgers recorded after the last completed round (largest over the clients for `record`). */
  spentEpsilon: number | null;
  /** The calibrated noise multiplier (mean over the clients for `record`; they differ by their number of units). */
  noiseMultiplier: number | null;
  initialEvalLoss: number;
  /** Held-out loss after each completed round. */
  evalLossPerRound: number[];
  finalEvalLoss: number | null;
  perplexity: number | null;
  /** Share of the same variant's non-private improvement that this point keeps. */
  improvementKept: number | null;
  /** Rounds that completed (of the planned ones) and attempts that aborted. */
  completedRounds: number;
  abortedAttempts: number;
  updateParameters: number;
  wallSeconds: number;
  /** One-minute load average of the machine when the point started and ended (os.loadavg()). */
  load: { start: number; end: number };
  /** The simulate arguments of this point (after `fedlora`). */
  command: string[];
  /** Why the point has no result (the command failed or timed out). */
  error?: string;
}

/** What to run: the sweep's settings. */
export interface PrivacyUtilityPlan {
  /** Record-level target epsilons; Infinity is the run without DP. */
  recordEpsilons: number[];
  /** Institution-level (central DP-FedAvg) target epsilons. */
  institutionEpsilons: number[];
  variants: Array<'lora' | 'ffa'>;
  clients: number;
  rounds: number;
  seed: string;
  secagg: boolean;
  /** Extra simulate flags given to every point (for example a smaller --chars-per-client for a smoke run). */
  extra: string[];
}

/** One point to run: which it is and its simulate arguments (an `--out DIR` is appended per run). */
export interface PointSpec {
  unit: PrivacyUtilityPoint['unit'];
  variant: 'lora' | 'ffa';
  epsilon: number | null;
  args: string[];
}

/** Every point of the sweep, per variant: the record-level epsilons in order (no DP where Infinity is), then institution-level. */
export function planPoints(p: PrivacyUtilityPlan): PointSpec[] {
  const specs: PointSpec[] = [];
  for (const variant of p.variants) {
    const common = ['simulate', '--clients', String(p.clients), '--rounds', String(p.rounds), '--seed', p.seed, ...(p.secagg ? ['--secagg'] : []), '--lora-variant', variant, ...p.extra, '--json'];
    for (const eps of p.recordEpsilons) {
      if (!Number.isFinite(eps)) specs.push({ unit: 'none', variant, epsilon: null, args: common });
      else specs.push({ unit: 'record', variant, epsilon: eps, args: [...common, '--dp-sgd-epsilon', String(eps)] });
    }
    for (const eps of p.institutionEpsilons) specs.push({ unit: 'institution', variant, epsilon: eps, args: [...common, '--dp-mode', 'central', '--dp-epsilon', String(eps)] });
  }
  return specs;
}

/** The point a simulate report gives (improvementKept is filled in by `withImprovementKept`). */
export function pointFromReport(spec: PointSpec, r: SimulationReport, run: { wallSeconds: number; load: { start: number; end: number } }): PrivacyUtilityPoint {
  const completed = r.rounds.filter((x) => x.status === 'completed');
  const last = completed.at(-1);
  const cal = r.clients.map((c) => c.dpSgdCalibration?.noiseMultiplier).filter((x): x is number => x !== undefined);
  const noiseMultiplier = spec.unit === 'record' ? (cal.length ? cal.reduce((a, b) => a + b, 0) / cal.length : null) : spec.unit === 'institution' ? (r.privacy?.noiseMultiplier ?? null) : null;
  return {
    unit: spec.unit,
    variant: spec.variant,
    epsilon: spec.epsilon,
    spentEpsilon: spec.unit === 'record' ? (last?.recordEpsilon ?? null) : spec.unit === 'institution' ? (last?.epsilon ?? null) : null,
    noiseMultiplier,
    initialEvalLoss: r.initialEvalLoss,
    evalLossPerRound: completed.map((x) => x.evalLoss).filter((x): x is number => x !== null),
    finalEvalLoss: r.finalEvalLoss,
    perplexity: r.finalEvalLoss === null ? null : Math.exp(r.finalEvalLoss),
    improvementKept: null,
    completedRounds: completed.length,
    abortedAttempts: r.rounds.length - completed.length,
    updateParameters: r.updateParameters,
    wallSeconds: run.wallSeconds,
    load: run.load,
    command: spec.args,
  };
}

/** Each point's share of its variant's no-DP improvement (null where there is no such run or it did not improve). */
export function withImprovementKept(points: readonly PrivacyUtilityPoint[]): PrivacyUtilityPoint[] {
  return points.map((p) => {
    const clear = points.find((q) => q.unit === 'none' && q.variant === p.variant);
    const gain = clear?.finalEvalLoss != null ? clear.initialEvalLoss - clear.finalEvalLoss : 0;
    return { ...p, improvementKept: gain > 0 && p.finalEvalLoss !== null ? (p.initialEvalLoss - p.finalEvalLoss) / gain : null };
  });
}

/** FFA-LoRA minus LoRA final held-out loss at each record-level epsilon (negative: FFA is better). */
export function ffaMinusLora(points: readonly PrivacyUtilityPoint[], recordEpsilons: readonly number[]): Array<{ epsilon: number | null; lossDifference: number | null }> {
  return recordEpsilons.map((eps) => {
    const unit = Number.isFinite(eps) ? 'record' : 'none';
    const at = (v: string): number | null | undefined => points.find((p) => p.unit === unit && p.variant === v && (p.epsilon ?? Infinity) === eps)?.finalEvalLoss;
    const l = at('lora');
    const f = at('ffa');
    return { epsilon: Number.isFinite(eps) ? eps : null, lossDifference: l != null && f != null ? f - l : null };
  });
}
