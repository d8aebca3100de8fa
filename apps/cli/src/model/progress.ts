/**
 * Training progress on stderr: a one-line bar with loss and tokens/s when stderr is a terminal,
 * otherwise quiet structured lines (one JSON object every `every` steps) for logs.
 */
import type { StepInfo } from '@fedlora/train';

/** Returns an onStep callback that reports progress for a run of `total` steps. */
export function progressReporter(total: number, opts: { label?: string; every?: number; stream?: NodeJS.WriteStream } = {}): (s: StepInfo) => void {
  const stream = opts.stream ?? process.stderr;
  const label = opts.label ?? 'train';
  const every = opts.every ?? Math.max(1, Math.floor(total / 20));
  let emaTps = 0;
  return (s) => {
    emaTps = emaTps === 0 ? s.tokensPerSecond : 0.9 * emaTps + 0.1 * s.tokensPerSecond;
    if (stream.isTTY) {
      const width = 24;
      const filled = Math.round((width * s.step) / total);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
      const ev = s.evalLoss !== undefined ? ` eval ${s.evalLoss.toFixed(3)}` : '';
      stream.write(`\r${label} [${bar}] ${s.step}/${total} loss ${s.loss.toFixed(3)}${ev} ${Math.round(emaTps)} tok/s `);
      if (s.step >= total) stream.write('\n');
    } else if (s.step % every === 0 || s.step === total || s.evalLoss !== undefined) {
      stream.write(
        `${JSON.stringify({ event: label, step: s.step, of: total, loss: round(s.loss), evalLoss: s.evalLoss === undefined ? undefined : round(s.evalLoss), tokensPerSecond: Math.round(emaTps), lr: s.learningRate })}\n`,
      );
    }
  };
}

function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
