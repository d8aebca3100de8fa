/**
 * The privacy and training charts, shared by the dashboard and `fedlora audit --html`: Vega-Lite
 * specs rendered to SVG on the server with vega's headless View (no script in the page, nothing
 * fetched from a CDN). Rounds are integers on the axis; a budget gets its own chart (the share
 * spent, so a curve ending at 9 is not flattened by a budget line at 100); every point carries a
 * sentence (round, epsilon, mechanism, noise) as its `aria-label` and as an SVG `<title>`, which
 * browsers show on hover.
 */
import type { TopLevelSpec } from 'vega-lite';

/** One round of a verified ledger, as charted. */
export interface EpsilonPoint {
  round: number;
  /** Cumulative epsilon after this round (recomputed by the verifier). */
  epsilon: number;
  /** Epsilon this round added (cumulative minus the previous round's). */
  increment: number;
  /** e.g. "central Gaussian (sampled)", "Skellam (distributed)", "DP-SGD". */
  mechanism: string;
  /** e.g. "z = 1.00, C = 0.1". */
  noise: string;
}

/** One ledger's curve. */
export interface EpsilonSeries {
  /** e.g. "federation", "inst-1", "inst-1 (records)". */
  label: string;
  /** Privacy unit: institution or record. */
  unit: string;
  delta: number | null;
  /** Budget epsilon, when the ledger's writer enforces one. */
  budget: number | null;
  points: EpsilonPoint[];
}

/** One round of training metrics (held-out ones where the round was evaluated). */
export interface TrainingPoint {
  round: number;
  trainLoss: number | null;
  evalLoss?: number | null;
  perplexity?: number | null;
  mcqAccuracy?: number | null;
  /** Which adapter the held-out metrics are of: the one the round produced, or the one it started from (federated evaluation). */
  evaluated?: 'after the round' | 'at the start of the round';
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
/** Integer rounds on the x axis: no 1.2, 1.4, ... ticks. */
const ROUND_AXIS = { title: 'round', tickMinStep: 1, format: 'd' } as const;
const ROUND_SCALE = { zero: false, nice: false, padding: 12 } as const;

const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** The sentence a person reads on hover (and a screen reader as the point's label). */
export function pointLabel(s: EpsilonSeries, p: EpsilonPoint): string {
  const budget = s.budget !== null ? ` of budget ${s.budget} (${Math.round((100 * p.epsilon) / s.budget)}% spent)` : '';
  return `${s.label}, round ${p.round}: epsilon ${fmt(p.epsilon)}${budget}, +${fmt(p.increment)} this round; ${p.mechanism}; noise ${p.noise}; unit ${s.unit}`;
}

/** Cumulative epsilon per round for every ledger; y fits the curves, not the budgets. */
export function epsilonChartSpec(series: readonly EpsilonSeries[], title = 'Cumulative epsilon per round'): TopLevelSpec {
  const values = series.flatMap((s) => s.points.map((p) => ({ ledger: s.label, round: p.round, epsilon: p.epsilon, label: pointLabel(s, p) })));
  const enc = {
    x: { field: 'round', type: 'quantitative', axis: ROUND_AXIS, scale: ROUND_SCALE },
    y: { field: 'epsilon', type: 'quantitative', title: 'epsilon (cumulative)' },
    color: { field: 'ledger', type: 'nominal', title: 'ledger', legend: { labelLimit: 260 } },
  };
  return {
    $schema: SCHEMA,
    width: 560,
    height: 260,
    title,
    data: { values },
    layer: lineWithPoints(enc),
  } as TopLevelSpec;
}

/** A line (hidden from screen readers) and its points, each labelled by the datum's `label`. */
function lineWithPoints(enc: object): object[] {
  return [
    { mark: { type: 'line', aria: false }, encoding: enc },
    { mark: { type: 'point', filled: true, size: 70 }, encoding: { ...enc, tooltip: { field: 'label', type: 'nominal' }, description: { field: 'label', type: 'nominal' } } },
  ];
}

/** The share of each budget spent per round (0-100%, its own scale), with the budget at 100%. */
export function budgetChartSpec(series: readonly EpsilonSeries[]): TopLevelSpec | null {
  const budgeted = series.filter((s) => s.budget !== null && s.budget > 0);
  if (budgeted.length === 0) return null;
  const values = budgeted.flatMap((s) => s.points.map((p) => ({ ledger: s.label, round: p.round, spent: p.epsilon / s.budget!, label: pointLabel(s, p) })));
  const top = Math.max(1, ...values.map((v) => v.spent));
  const enc = {
    x: { field: 'round', type: 'quantitative', axis: ROUND_AXIS, scale: ROUND_SCALE },
    y: { field: 'spent', type: 'quantitative', title: 'share of budget spent', axis: { format: '%' }, scale: { domain: [0, top] } },
    color: { field: 'ledger', type: 'nominal', title: 'ledger', legend: { labelLimit: 260 } },
  };
  return {
    $schema: SCHEMA,
    width: 560,
    height: 200,
    title: 'Budget spent (100% = the budget)',
    layer: [
      ...lineWithPoints(enc).map((l) => ({ data: { values }, ...l })),
      { data: { values: [{ y: 1 }] }, mark: { type: 'rule', strokeDash: [6, 4], color: '#b00', aria: false }, encoding: { y: { field: 'y', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

/** Mean train loss and held-out loss per round (MCQ accuracy on its own chart). */
export function trainingChartSpecs(points: readonly TrainingPoint[]): TopLevelSpec[] {
  const loss = points.flatMap((p) => [
    ...(p.trainLoss !== null && Number.isFinite(p.trainLoss) ? [{ round: p.round, metric: 'mean train loss', value: p.trainLoss }] : []),
    ...(p.evalLoss !== undefined && p.evalLoss !== null && Number.isFinite(p.evalLoss) ? [{ round: p.round, metric: 'held-out loss', value: p.evalLoss }] : []),
  ]);
  const mcq = points.filter((p) => p.mcqAccuracy !== undefined && p.mcqAccuracy !== null).map((p) => ({ round: p.round, metric: 'MCQ accuracy', value: p.mcqAccuracy! }));
  const chart = (title: string, values: object[], y: object): TopLevelSpec =>
    ({
      $schema: SCHEMA,
      width: 560,
      height: 200,
      title,
      data: { values: values.map((v) => ({ ...v, label: `${(v as { metric: string }).metric}, round ${(v as { round: number }).round}: ${fmt((v as { value: number }).value)}` })) },
      layer: lineWithPoints({
        x: { field: 'round', type: 'quantitative', axis: ROUND_AXIS, scale: ROUND_SCALE },
        y: { field: 'value', type: 'quantitative', ...y },
        color: { field: 'metric', type: 'nominal', title: null },
      }),
    }) as TopLevelSpec;
  return [
    ...(loss.length ? [chart('Loss per round', loss, { title: 'loss', scale: { zero: false } })] : []),
    ...(mcq.length ? [chart('MCQ accuracy per round', mcq, { title: 'accuracy', axis: { format: '%' }, scale: { domain: [0, 1] } })] : []),
  ];
}

/**
 * Renders a Vega-Lite spec to SVG with vega's headless View, then gives every labelled mark a
 * `<title>` child (its aria-label, already escaped by vega) so the browser shows it on hover.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg.replace(/<path ([^>]*?)aria-label="([^"]*)"([^>]*?)\/>/g, '<path $1aria-label="$2"$3><title>$2</title></path>');
  } finally {
    view.finalize();
  }
}
