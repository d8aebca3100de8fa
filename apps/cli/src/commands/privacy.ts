import {
  calibrateNoise,
  composeRdp,
  rdpToDelta,
  rdpToEpsilon,
  resolveOrders,
  validateEvent,
  type Conversion,
  type PrivacyEvent,
} from '@fedlora/privacy';
import type { Command } from 'commander';
import { CliError, printJson, readStdin } from '../output.js';

/** Human-readable result on stdout (without --json). */
function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Options shared by the `privacy` subcommands (flags for the single sampled-Gaussian case). */
interface PrivacyFlags {
  json?: boolean;
  noiseMultiplier?: string;
  samplingRate?: string;
  steps?: string;
  delta?: string;
  epsilon?: string;
  targetEpsilon?: string;
  orders?: string;
  conversion?: string;
}

interface Spec {
  events: PrivacyEvent[];
  orders: number[];
  conversion: Conversion;
  raw: Record<string, unknown>;
}

function numberFlag(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || Number.isNaN(x)) throw new CliError(`--${name} must be a number, received "${v}"`);
  return x;
}

function parseOrdersFlag(v: string): string | number[] {
  return /^[\d.,\s]+$/.test(v) ? v.split(',').map(Number) : v;
}

/** The spec from flags when --noise-multiplier is given, otherwise the JSON document on stdin. */
async function readSpec(flags: PrivacyFlags): Promise<Record<string, unknown>> {
  if (flags.noiseMultiplier !== undefined || flags.targetEpsilon !== undefined) {
    const spec: Record<string, unknown> = {};
    const z = numberFlag(flags.noiseMultiplier, 'noise-multiplier');
    const q = numberFlag(flags.samplingRate, 'sampling-rate') ?? 1;
    const steps = numberFlag(flags.steps, 'steps') ?? 1;
    if (z !== undefined) spec['events'] = [{ mechanism: 'sampled_gaussian', noiseMultiplier: z, samplingRate: q, steps }];
    spec['samplingRate'] = q;
    spec['steps'] = steps;
    const t = numberFlag(flags.targetEpsilon, 'target-epsilon');
    if (t !== undefined) spec['targetEpsilon'] = t;
    return spec;
  }
  const text = (await readStdin()).trim();
  if (!text) throw new CliError('expected a JSON spec on stdin (or --noise-multiplier/--sampling-rate/--steps flags); see --help');
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new CliError(`the spec on stdin is not a JSON object: ${(err as Error).message}`);
  }
}

function resolveSpec(raw: Record<string, unknown>, flags: PrivacyFlags, needEvents: boolean): Spec {
  try {
    const orders = resolveOrders(flags.orders !== undefined ? parseOrdersFlag(flags.orders) : ((raw['orders'] as string | number[] | undefined) ?? 'dp-accounting'));
    const conversion = (flags.conversion ?? raw['conversion'] ?? 'improved') as Conversion;
    if (conversion !== 'improved' && conversion !== 'classic') throw new RangeError(`conversion must be "improved" or "classic", received "${String(conversion)}"`);
    let events: PrivacyEvent[] = [];
    if (needEvents) {
      const evs = raw['events'];
      if (!Array.isArray(evs) || evs.length === 0) throw new TypeError('spec.events must be a non-empty array of events');
      events = evs.map((e, i) => validateEvent(e, `events[${i}]`));
    }
    return { events, orders, conversion, raw };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

function specNumber(spec: Spec, flags: PrivacyFlags, key: 'delta' | 'epsilon' | 'targetEpsilon' | 'samplingRate' | 'steps'): number {
  const fromFlag = key === 'delta' || key === 'epsilon' ? numberFlag(flags[key], key) : undefined;
  const v = fromFlag ?? spec.raw[key];
  if (typeof v !== 'number' || Number.isNaN(v)) throw new CliError(`spec.${key} must be a number, received ${JSON.stringify(v)}`);
  return v;
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message);
  }
}

function addShared(cmd: Command): Command {
  return cmd
    .option('--json', 'print one JSON document on stdout')
    .option('--noise-multiplier <z>', 'single sampled-Gaussian event instead of a stdin spec')
    .option('--sampling-rate <q>', 'sampling rate of the single event (default 1)')
    .option('--steps <n>', 'steps of the single event (default 1)')
    .option('--orders <preset|list>', 'opacus | dp-accounting | tf-privacy | comma-separated orders')
    .option('--conversion <name>', 'improved (Balle et al. 2020, default) | classic (Mironov 2017)');
}

const SPEC_HELP = `
The spec is a JSON document on stdin, e.g.
  {"events": [{"mechanism": "sampled_gaussian", "noiseMultiplier": 1.5, "samplingRate": 0.04, "steps": 2250}],
   "delta": 1e-5, "orders": "opacus", "conversion": "improved"}
Mechanisms: sampled_gaussian (noiseMultiplier, samplingRate, steps); gaussian (noiseMultiplier, steps);
discrete_gaussian (sigma, l2Sensitivity, steps, [l1Sensitivity, parties, dimension, samplingRate]);
skellam (variance, l1Sensitivity, l2Sensitivity, steps, [samplingRate]); rdp (orders, values).
Infinite values print as null in JSON.`;

/** Registers `fedlora privacy epsilon|rdp|delta|noise`. */
export function register(program: Command): void {
  const privacy = program.command('privacy').description('Privacy accounting: RDP curves, epsilon, delta, noise calibration');

  addShared(privacy.command('epsilon').description('epsilon of composed events at delta (spec on stdin)'))
    .option('--delta <d>', 'target delta (overrides spec.delta)')
    .addHelpText('after', SPEC_HELP)
    .action(async (flags: PrivacyFlags) => {
      const spec = resolveSpec(await readSpec(flags), flags, true);
      const delta = specNumber(spec, flags, 'delta');
      const r = guard(() => rdpToEpsilon(spec.orders, composeRdp(spec.events, spec.orders), delta, spec.conversion));
      if (flags.json) printJson({ epsilon: r.epsilon, order: r.order });
      else say(`epsilon = ${r.epsilon} at order ${r.order} (delta ${delta}, ${spec.conversion} conversion)`);
    });

  addShared(privacy.command('rdp').description('composed RDP curve of the events (spec on stdin, no delta)'))
    .addHelpText('after', SPEC_HELP)
    .action(async (flags: PrivacyFlags) => {
      const spec = resolveSpec(await readSpec(flags), flags, true);
      const rdp = guard(() => composeRdp(spec.events, spec.orders));
      if (flags.json) printJson({ orders: spec.orders, rdp });
      else say(spec.orders.map((a, i) => `${a}\t${rdp[i]}`).join('\n'));
    });

  addShared(privacy.command('delta').description('delta of composed events at epsilon (spec on stdin with "epsilon")'))
    .option('--epsilon <e>', 'target epsilon (overrides spec.epsilon)')
    .addHelpText('after', SPEC_HELP)
    .action(async (flags: PrivacyFlags) => {
      const spec = resolveSpec(await readSpec(flags), flags, true);
      const epsilon = specNumber(spec, flags, 'epsilon');
      const r = guard(() => rdpToDelta(spec.orders, composeRdp(spec.events, spec.orders), epsilon, spec.conversion));
      if (flags.json) printJson({ delta: r.delta, order: r.order });
      else say(`delta = ${r.delta} at order ${r.order} (epsilon ${epsilon}, ${spec.conversion} conversion)`);
    });

  privacy
    .command('noise')
    .description('smallest sampled-Gaussian noise multiplier (to 1e-4) whose epsilon is within the target')
    .option('--json', 'print one JSON document on stdout')
    .option('--target-epsilon <e>', 'instead of a stdin spec')
    .option('--delta <d>', 'target delta')
    .option('--sampling-rate <q>', 'sampling rate (default 1)')
    .option('--steps <n>', 'number of steps (default 1)')
    .option('--orders <preset|list>', 'opacus | dp-accounting | tf-privacy | comma-separated orders')
    .option('--conversion <name>', 'improved (default) | classic')
    .addHelpText('after', '\nSpec on stdin: {"targetEpsilon": 8, "delta": 1e-5, "samplingRate": 0.04, "steps": 2250, "orders": "opacus"}')
    .action(async (flags: PrivacyFlags) => {
      const spec = resolveSpec(await readSpec(flags), flags, false);
      const opts = {
        targetEpsilon: specNumber(spec, flags, 'targetEpsilon'),
        delta: specNumber(spec, flags, 'delta'),
        samplingRate: specNumber(spec, flags, 'samplingRate'),
        steps: specNumber(spec, flags, 'steps'),
        orders: spec.orders,
        conversion: spec.conversion,
      };
      const z = guard(() => calibrateNoise(opts));
      if (flags.json) printJson({ noiseMultiplier: z });
      else say(`noise multiplier = ${z}`);
    });
}
