#!/usr/bin/env node
// `npm run demo`: the fedlora walk-through on one machine, in two federations over real gRPC.
//  1. Three institutions fine-tune together with secure aggregation: the coordinator only ever
//     sees the sum of their updates, and the held-out loss falls.
//  2. The same with distributed differential privacy on top: each institution adds its share of
//     Skellam noise, enforces its own budget, and keeps a signed ledger; the clip norm adapts to
//     the updates from round to round (Andrew et al. 2021); the run ends with the audit of every ledger.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../apps/cli/bin/fedlora.mjs', import.meta.url));
const steps = [
  {
    title: 'Part 1/2: three institutions, secure aggregation (SecAgg+): the coordinator sees only the sum',
    args: ['simulate', '--clients', '3', '--rounds', '3', '--secagg'],
  },
  {
    title: 'Part 2/2: the same with distributed differential privacy (Skellam noise, adaptive clipping, per-institution budgets, signed ledgers, audit)',
    // --dashboard: the coordinator's web dashboard during the run (its URL is printed; port 0 picks a free one).
    args: ['simulate', '--clients', '3', '--rounds', '3', '--secagg', '--dp-mode', 'distributed', '--dp-clip', '0.3', '--dp-noise-multiplier', '1', '--dp-adaptive-clip', '--client-epsilon', '20', '--dashboard', '127.0.0.1:0'],
  },
];
for (const s of steps) {
  process.stdout.write(`\n=== ${s.title}\n$ fedlora ${s.args.join(' ')}\n\n`);
  const r = spawnSync(process.execPath, [bin, ...s.args, ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.stdout.write(
  '\nTo watch a federation in your browser, run it with the dashboard and keep it up after the run:\n' +
    '  npx fedlora simulate --rounds 5 --dp-mode central --client-epsilon 8 --dashboard 127.0.0.1:8080 --dashboard-linger 600\n' +
    'and open http://127.0.0.1:8080/ (rounds, training, the verified privacy ledgers and refusals).\n',
);
