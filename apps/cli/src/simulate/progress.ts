import type { ProgressEvent } from './run-simulation.js';

/**
 * A one-line progress display on stderr while clients train (redrawn in place on a TTY, a line
 * per round otherwise), so stdout stays clean.
 */
export function createProgressDisplay(totalRounds: number, stream: NodeJS.WriteStream = process.stderr): (e: ProgressEvent) => void {
  const tty = stream.isTTY === true;
  const steps = new Map<string, { step: number; steps: number; loss: number; tps: number }>();
  let lastDraw = 0;
  const clear = () => tty && stream.write('\r\x1b[2K');
  return (e) => {
    if (e.kind === 'ready') {
      stream.write(`backend: ${e.backend}\n`);
      for (const c of e.clients) stream.write(`  ${c.name}: ${c.era}, ${c.trainSequences} training sequences\n`);
      return;
    }
    if (e.kind === 'round') {
      clear();
      const r = e.summary;
      stream.write(
        `round ${r.round}/${totalRounds} ${r.status}: ${r.participants} participants, train loss ${r.trainLoss?.toFixed(4) ?? '-'}, eval loss ${r.evalLoss?.toFixed(4) ?? '-'}${r.dropped.length ? `, dropped ${r.dropped.join(', ')}` : ''}\n`,
      );
      steps.clear();
      return;
    }
    steps.set(e.client, { step: e.step, steps: e.steps, loss: e.loss, tps: e.tokensPerSecond });
    const now = Date.now();
    if (!tty || now - lastDraw < 100) return;
    lastDraw = now;
    const width = 20;
    const parts = [...steps].map(([name, s]) => {
      const filled = Math.round((s.step / s.steps) * width);
      return `${name} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${s.step}/${s.steps} loss ${s.loss.toFixed(3)}`;
    });
    clear();
    stream.write(`round ${e.round}/${totalRounds} training: ${parts.join('  ')}`.slice(0, (stream.columns ?? 160) - 1));
  };
}
