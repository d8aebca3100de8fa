/**
 * The HTML page of `fedlora bench privacy-utility --html FILE`: held-out perplexity against
 * epsilon for each privacy unit and LoRA variant (vega-lite compiled and rendered to SVG with
 * vega's headless View, as the audit report does), and the table of every point.
 */
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { PrivacyUtilityPoint } from './privacy-utility-points.js';

/** What the page shows of each point (the bench's own point type, not a copy of it). */
type Point = Pick<PrivacyUtilityPoint, 'unit' | 'variant' | 'epsilon' | 'spentEpsilon' | 'noiseMultiplier' | 'initialEvalLoss' | 'evalLossPerRound' | 'finalEvalLoss' | 'perplexity' | 'improvementKept' | 'wallSeconds' | 'load' | 'command' | 'error'>;

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Perplexity against epsilon per series; the no-DP runs as dashed rules, the base model as a grey rule. */
export function privacyUtilitySpec(points: readonly Point[]): TopLevelSpec {
  const dp = points.filter((p) => p.epsilon !== null && p.perplexity !== null).map((p) => ({ series: `${p.unit}-level, ${p.variant}`, epsilon: p.epsilon, perplexity: p.perplexity }));
  const clear = points.filter((p) => p.epsilon === null && p.perplexity !== null).map((p) => ({ series: `no DP, ${p.variant}`, perplexity: p.perplexity }));
  const first = points.find((p) => Number.isFinite(p.initialEvalLoss));
  const base = first ? [{ perplexity: Math.exp(first.initialEvalLoss) }] : [];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 640,
    height: 360,
    title: 'Held-out perplexity of the shared adapter against epsilon (delta 1e-5; dashed: no DP; grey: base model)',
    layer: [
      {
        data: { values: dp },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'epsilon', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'epsilon (log scale)' },
          y: { field: 'perplexity', type: 'quantitative', scale: { zero: false }, title: 'held-out perplexity' },
          color: { field: 'series', type: 'nominal' },
        },
      },
      { data: { values: clear }, mark: { type: 'rule', strokeDash: [6, 4] }, encoding: { y: { field: 'perplexity', type: 'quantitative' }, color: { field: 'series', type: 'nominal' } } },
      { data: { values: base }, mark: { type: 'rule', color: '#999' }, encoding: { y: { field: 'perplexity', type: 'quantitative' } } },
    ],
  } as TopLevelSpec;
}

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const num = (v: number | null, digits: number): string => (v === null ? '&mdash;' : v.toFixed(digits));

/** A self-contained page: settings, the curves, every point. */
export async function privacyUtilityHtml(report: { settings: object; points: Point[] }, generatedAt: string): Promise<string> {
  const svg = await renderSvg(privacyUtilitySpec(report.points));
  const rows = report.points.map(
    (p) =>
      `<tr><td>${escapeHtml(p.unit)}</td><td>${escapeHtml(p.variant)}</td><td>${p.epsilon ?? '&infin;'}</td><td>${num(p.spentEpsilon, 3)}</td><td>${num(p.noiseMultiplier, 3)}</td><td>${escapeHtml(p.evalLossPerRound.map((x) => x.toFixed(4)).join(', '))}</td><td>${num(p.perplexity, 2)}</td><td>${num(p.improvementKept, 2)}</td><td>${p.wallSeconds}</td><td>${p.load.start} / ${p.load.end}</td><td style="text-align:left"><code>fedlora ${escapeHtml(p.command.join(' '))}</code>${p.error ? `<br>${escapeHtml(p.error)}` : ''}</td></tr>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedlora privacy-utility</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:90em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}</style>
</head><body>
<h1>fedlora privacy-utility</h1>
<p>Generated ${escapeHtml(generatedAt)}. Settings: <code>${escapeHtml(JSON.stringify(report.settings))}</code></p>
${svg}
<table><thead><tr><th>unit</th><th>variant</th><th>target &epsilon;</th><th>spent &epsilon;</th><th>noise multiplier</th><th>held-out loss per round</th><th>final perplexity</th><th>improvement kept</th><th>seconds</th><th>load (start / end)</th><th>command</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
</body></html>
`;
}
