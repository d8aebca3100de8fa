/** Helpers that keep the CLI's contract: one JSON document on stdout with --json, logs on stderr. */

/** An error meant for the person at the terminal: printed without a stack, exit code non-zero. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Prints exactly one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Human-oriented line on stderr (so stdout stays clean for --json consumers). */
export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Formats rows as a fixed-width text table. */
export function formatTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  return cells
    .map((r, j) => {
      const line = r.map((c, i) => String(c ?? '').padStart(widths[i]!)).join('  ');
      return j === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function formatNumber(x: number): string {
  if (Number.isInteger(x)) return String(x);
  return Math.abs(x) >= 1000 || Math.abs(x) < 0.001 ? x.toExponential(3) : x.toFixed(4);
}

/** Reads all of stdin as text (for commands that take a JSON spec on stdin). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
