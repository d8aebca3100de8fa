/**
 * `bench/privacy-utility.ts`: the privacy-utility curve of a federation, in one run. Each point is
 * `fedlora simulate` itself (a real coordinator and real clients over gRPC on 127.0.0.1, the State
 * of the Union split by era, simulate's default data: 1,000,000 characters per institution), run
 * as a child process with `--json`, and reports the held-out loss and perplexity of the final
 * shared adapter (privacy-utility-points.ts builds the command lines):
 *   - `record`: `--dp-sgd-epsilon E`, record-level DP-SGD inside every client with simulate's DP-SGD
 *     defaults (apps/cli/src/simulate/dp-defaults.ts), the privacy unit a document (a simulated
 *     record of about 400 characters), the noise multiplier calibrated by each client from its
 *     budget over the planned rounds (budget first), for plain LoRA and for FFA-LoRA (A frozen);
 *   - `none`: the same command without DP (simulate's ordinary defaults): what DP is measured against;
 *   - `institution`: `--dp-mode central --dp-epsilon E`, institution-level DP-FedAvg with central
 *     noise, z calibrated so that the planned rounds spend epsilon (three institutions: the cohort
 *     allows it, the utility shows why it needs many more).
 * With `--secagg` (the default) every point runs secure aggregation, as the demo does.
 * Prints ONE JSON document on stdout (progress on stderr); `--html FILE` writes the curves
 * (vega-lite rendered to SVG, self-contained). There is no peer implementation on this machine to
 * compare with; the comparison is between the variants, in the same run, with the same data.
 *
 *   npx tsx bench/privacy-utility.ts [--epsilons 1,2,4,8,inf] [--variants lora,ffa] [--institution 8]
 *     [--clients 3] [--rounds 3] [--seed fedlora] [--no-secagg] [--extra '--chars-per-client 200000']
 *     [--point-timeout 1800] [--out DIR] [--html FILE]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimulationReport } from '@fedlora/cli';
import { privacyUtilityHtml } from './privacy-utility-html.js';
import { ffaMinusLora, planPoints, pointFromReport, withImprovementKept, type PointSpec, type PrivacyUtilityPoint } from './privacy-utility-points.js';

export type { PrivacyUtilityPoint } from './privacy-utility-points.js';

const CLI = fileURLToPath(new URL('../apps/cli/bin/fedlora.mjs', import.meta.url));

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function positive(name: string, fallback: string): number {
  const v = Number(arg(name, fallback));
  if (!(v > 0) || !Number.isInteger(v)) throw new RangeError(`--${name} must be a positive integer, received ${arg(name, fallback)}`);
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
const load1 = (): number => Math.round(loadavg()[0]! * 100) / 100;

/** Runs one simulate command; resolves with its parsed report, or rejects (exit code, timeout, bad JSON). */
function simulate(args: string[], timeoutMs: number): Promise<{ report: SimulationReport; appliedDefaults: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      process.stderr.write(`  | ${d.toString().trimEnd().replace(/\n/g, '\n  | ')}\n`);
    });
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      reject(new Error(`timed out after ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`simulate exited with code ${code}: ${err.trim().split('\n').at(-1) ?? ''}`));
      try {
        resolve({ report: JSON.parse(out) as SimulationReport, appliedDefaults: /^DP-SGD defaults .*$/m.exec(err)?.[0] ?? null });
      } catch (e) {
        reject(new Error(`simulate printed no JSON report: ${e instanceof Error ? e.message : String(e)}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const recordEpsilons = epsilons('epsilons', '1,2,4,8,inf');
  const institutionEpsilons = epsilons('institution', '8').filter(Number.isFinite);
  const variants = arg('variants', 'lora,ffa').split(',') as Array<'lora' | 'ffa'>;
  for (const v of variants) if (v !== 'lora' && v !== 'ffa') throw new RangeError(`--variants: expected lora and/or ffa, received ${JSON.stringify(v)}`);
  const plan = {
    recordEpsilons,
    institutionEpsilons,
    variants,
    clients: positive('clients', '3'),
    rounds: positive('rounds', '3'),
    seed: arg('seed', 'fedlora'),
    secagg: !process.argv.includes('--no-secagg'),
    extra: arg('extra', '').split(/\s+/).filter(Boolean),
  };
  const timeoutMs = positive('point-timeout', '1800') * 1000;
  const keep = arg('out', '');
  const outRoot = keep || mkdtempSync(join(tmpdir(), 'fedlora-privacy-utility-'));
  const specs = planPoints(plan);
  const raw: PrivacyUtilityPoint[] = [];
  let dpSgdDefaults: string | null = null;
  const started = performance.now();
  try {
    for (const [i, spec] of specs.entries()) {
      const name = `${spec.unit}-${spec.variant}-${spec.epsilon ?? 'none'}`;
      const dir = join(outRoot, name);
      mkdirSync(dir, { recursive: true });
      const load = { start: load1(), end: 0 };
      log(`privacy-utility [${i + 1}/${specs.length}] ${name}: fedlora ${spec.args.join(' ')} (load ${load.start}, ${Math.round((performance.now() - started) / 1000)} s so far)`);
      const t0 = performance.now();
      raw.push(await runPoint(spec, dir, timeoutMs, t0, load, (d) => (dpSgdDefaults ??= d)));
      const p = raw.at(-1)!;
      log(`  -> ${p.error ?? `held-out loss ${p.initialEvalLoss.toFixed(4)} -> ${p.evalLossPerRound.map((x) => x.toFixed(4)).join(', ')}; z ${p.noiseMultiplier?.toFixed(3) ?? '-'}, spent epsilon ${p.spentEpsilon?.toFixed(3) ?? '-'}`} (${p.wallSeconds} s, load ${p.load.end})`);
    }
  } finally {
    if (!keep) rmSync(outRoot, { recursive: true, force: true });
  }
  const points = withImprovementKept(raw);
  const report = {
    benchmark: 'privacy-utility',
    settings: { ...plan, recordEpsilons: recordEpsilons.map((e) => (Number.isFinite(e) ? e : null)), delta: 1e-5, privacyUnit: 'document (about 400 characters)', dpSgdDefaults },
    points,
    ffaMinusLora: ffaMinusLora(points, recordEpsilons),
    totalSeconds: Math.round((performance.now() - started) / 1000),
    peer: 'none: no other federated DP implementation on this machine; the variants are compared in the same run on the same data',
  };
  const html = arg('html', '');
  if (html) {
    writeFileSync(html, await privacyUtilityHtml(report, new Date().toISOString()));
    log(`privacy-utility: wrote ${html}`);
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

/** One point: its simulate run, or a point carrying the error (the sweep goes on). */
async function runPoint(spec: PointSpec, dir: string, timeoutMs: number, t0: number, load: { start: number; end: number }, onDefaults: (d: string) => void): Promise<PrivacyUtilityPoint> {
  const wall = (): number => Math.round((performance.now() - t0) / 100) / 10;
  try {
    const { report, appliedDefaults } = await simulate([...spec.args, '--out', dir], timeoutMs);
    if (appliedDefaults) onDefaults(appliedDefaults);
    return pointFromReport(spec, report, { wallSeconds: wall(), load: { ...load, end: load1() } });
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    return { unit: spec.unit, variant: spec.variant, epsilon: spec.epsilon, spentEpsilon: null, noiseMultiplier: null, initialEvalLoss: Number.NaN, evalLossPerRound: [], finalEvalLoss: null, perplexity: null, improvementKept: null, completedRounds: 0, abortedAttempts: 0, updateParameters: 0, wallSeconds: wall(), load: { ...load, end: load1() }, command: spec.args, error };
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench privacy-utility: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
