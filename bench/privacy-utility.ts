/**
 * `bench/privacy-utility.ts`: the privacy-utility curve of a federation, in one run. For each
 * target epsilon (and without DP) it runs the same simulated federation (`runSimulation`: a real
 * coordinator and real clients over gRPC on 127.0.0.1, the State of the Union split by era) and
 * reports the held-out loss and perplexity of the final shared adapter:
 *   - `record`: record-level DP-SGD inside every client, the privacy unit a document (a simulated
 *     record of about 400 characters), the noise multiplier calibrated by each client from its
 *     budget over the planned rounds (budget first), for plain LoRA and for FFA-LoRA (A frozen);
 *   - `institution`: institution-level DP-FedAvg with central noise, z calibrated so that the
 *     planned rounds spend epsilon (three institutions: the cohort allows it, the utility shows
 *     why it needs many more).
 * Prints ONE JSON document on stdout (progress on stderr); `--html FILE` writes the curves
 * (vega-lite rendered to SVG, self-contained). There is no peer implementation on this machine to
 * compare with; the comparison is between the variants, in the same run, with the same data.
 *
 *   npx tsx bench/privacy-utility.ts [--epsilons 1,2,4,8,inf] [--variants lora,ffa] [--institution 8]
 *     [--clients 3] [--rounds 2] [--local-steps 4] [--batch 16] [--seq 32] [--chars 40000] [--lr 0.01] [--html FILE]
 */
import { writeFileSync } from 'node:fs';
import { calibrateNoise } from '@fedlora/privacy';
import { runSimulation, type SimulationOptions, type SimulationReport } from '@fedlora/cli';
import { privacyUtilityHtml } from './privacy-utility-html.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function positive(name: string, fallback: string, integer = true): number {
  const v = Number(arg(name, fallback));
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new RangeError(`--${name} must be a positive ${integer ? 'integer' : 'number'}, received ${arg(name, fallback)}`);
  return v;
}

/** `inf` (or `none`) is the run without DP. */
function epsilons(name: string, fallback: string): number[] {
  const raw = arg(name, fallback);
  if (raw === '') return [];
  return raw.split(',').map((s) => {
    const v = /^(inf|none)$/i.test(s.trim()) ? Number.POSITIVE_INFINITY : Number(s);
    if (!(v > 0)) throw new RangeError(`--${name}: every value must be > 0 or inf, received ${JSON.stringify(s)}`);
    return v;
  });
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);

/** One point of the curves. */
export interface PrivacyUtilityPoint {
  unit: 'record' | 'institution' | 'none';
  variant: 'lora' | 'ffa';
  /** Target epsilon at `delta`; null: no DP. */
  epsilon: number | null;
  /** Epsilon the ledgers recorded after the last round (largest over the clients for `record`). */
  spentEpsilon: number | null;
  /** The calibrated noise multiplier (mean over the clients for `record`; they differ by their number of units). */
  noiseMultiplier: number | null;
  initialEvalLoss: number;
  finalEvalLoss: number | null;
  perplexity: number | null;
  /** Share of the same variant's non-private improvement that this point keeps. */
  improvementKept: number | null;
  updateParameters: number;
  wallSeconds: number;
}

async function main(): Promise<void> {
  const delta = 1e-5;
  const recordEps = epsilons('epsilons', '1,2,4,8,inf');
  const institutionEps = epsilons('institution', '8').filter(Number.isFinite);
  const variants = arg('variants', 'lora,ffa').split(',') as Array<'lora' | 'ffa'>;
  for (const v of variants) if (v !== 'lora' && v !== 'ffa') throw new RangeError(`--variants: expected lora and/or ffa, received ${JSON.stringify(v)}`);
  const base: SimulationOptions = {
    clients: positive('clients', '3'),
    rounds: positive('rounds', '2'),
    localSteps: positive('local-steps', '4'),
    batchSize: positive('batch', '16'),
    learningRate: positive('lr', '0.01', false),
    seqLen: positive('seq', '32'),
    charsPerClient: positive('chars', '40000'),
    evalSequences: positive('eval-sequences', '16'),
    evalFraction: 0.1,
    roundDeadlineMs: 1_800_000,
    strategy: { name: 'fedavg' },
    seed: arg('seed', 'privacy-utility'),
  };
  const points: PrivacyUtilityPoint[] = [];
  const run = async (unit: PrivacyUtilityPoint['unit'], variant: 'lora' | 'ffa', epsilon: number | null, extra: Partial<SimulationOptions>, z: number | null): Promise<void> => {
    log(`privacy-utility: ${unit} ${variant} epsilon ${epsilon ?? 'none'} ...`);
    const t0 = performance.now();
    const r: SimulationReport = await runSimulation({ ...base, loraVariant: variant, ...extra });
    const last = r.rounds.filter((x) => x.status === 'completed').at(-1);
    const cal = r.clients.map((c) => (c as { dpSgdCalibration?: { noiseMultiplier: number } }).dpSgdCalibration?.noiseMultiplier).filter((x): x is number => x !== undefined);
    points.push({
      unit,
      variant,
      epsilon,
      spentEpsilon: unit === 'record' ? (last?.recordEpsilon ?? null) : unit === 'institution' ? (last?.epsilon ?? null) : null,
      noiseMultiplier: z ?? (cal.length ? cal.reduce((a, b) => a + b, 0) / cal.length : null),
      initialEvalLoss: r.initialEvalLoss,
      finalEvalLoss: r.finalEvalLoss,
      perplexity: r.finalEvalLoss === null ? null : Math.exp(r.finalEvalLoss),
      improvementKept: null,
      updateParameters: r.updateParameters,
      wallSeconds: Math.round((performance.now() - t0) / 100) / 10,
    });
    log(`  -> eval loss ${r.initialEvalLoss.toFixed(4)} -> ${r.finalEvalLoss?.toFixed(4) ?? '-'} (${points.at(-1)!.wallSeconds} s)`);
  };
  for (const variant of variants) {
    for (const eps of recordEps) {
      if (!Number.isFinite(eps)) await run('none', variant, null, {}, null);
      else await run('record', variant, eps, { dpSgd: { epsilon: eps, delta, clipNorm: Number(arg('dp-sgd-clip', '0.1')) } }, null);
    }
    for (const eps of institutionEps) {
      // Central noise, every institution in every round (q = 1): z spends eps over the planned rounds.
      const z = calibrateNoise({ targetEpsilon: eps, delta, samplingRate: 1, steps: base.rounds });
      await run('institution', variant, eps, { privacy: { mode: 'central', clipNorm: Number(arg('dp-clip', '0.1')), noiseMultiplier: z, delta, clientEpsilon: eps * 1.001 } }, z);
    }
  }
  for (const p of points) {
    const clear = points.find((q) => q.unit === 'none' && q.variant === p.variant);
    if (clear?.finalEvalLoss != null && p.finalEvalLoss !== null && clear.initialEvalLoss - clear.finalEvalLoss > 0) {
      p.improvementKept = (p.initialEvalLoss - p.finalEvalLoss) / (clear.initialEvalLoss - clear.finalEvalLoss);
    }
  }
  // FFA-LoRA minus LoRA held-out loss at each record-level epsilon (negative: FFA is better).
  const ffaMinusLora = recordEps.map((eps) => {
    const unit = Number.isFinite(eps) ? 'record' : 'none';
    const at = (v: string) => points.find((p) => p.unit === unit && p.variant === v && (p.epsilon ?? Infinity) === eps)?.finalEvalLoss;
    const l = at('lora');
    const f = at('ffa');
    return { epsilon: Number.isFinite(eps) ? eps : null, lossDifference: l != null && f != null ? f - l : null };
  });
  const report = {
    benchmark: 'privacy-utility',
    settings: { ...base, delta, privacyUnit: 'document (about 400 characters)', recordEpsilons: recordEps.map((e) => (Number.isFinite(e) ? e : null)), institutionEpsilons: institutionEps },
    points,
    ffaMinusLora,
    peer: 'none: no other federated DP implementation on this machine; the variants are compared in the same run on the same data',
  };
  const html = arg('html', '');
  if (html) {
    writeFileSync(html, await privacyUtilityHtml(report, new Date().toISOString()));
    log(`privacy-utility: wrote ${html}`);
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench privacy-utility: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
