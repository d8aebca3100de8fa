/**
 * `fedlora bench <name>`: benchmarks that print one JSON document. Each subcommand runs the
 * script `bench/<name>.ts` in a child process (the bench project is not a dependency of the
 * app), passing its options through; stdout is the script's JSON, stderr its progress.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError } from '../output.js';

/** Runs bench/<script>.ts with tsx and the given arguments; resolves when it exits 0. */
export function runBenchScript(script: string, args: string[]): Promise<void> {
  const file = fileURLToPath(new URL(`../../../../bench/${script}.ts`, import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CliError(`bench/${script}.ts exited with code ${code}`))));
  });
}

/** Adds `bench` and its subcommands. */
export function register(program: Command): void {
  const bench = program.command('bench').description('Benchmarks (one JSON document on stdout)');
  bench
    .command('train')
    .description(
      'Tokens/s of a LoRA training step (seq 128, batch 4, r 8 on attention) for a GPT-2-small-shaped model, its first 4 layers ' +
        'with vocab 512, the committed tiny base, and a Qwen2.5-0.5B-shaped model (random weights, batch 1), on every available backend, ' +
        'next to the same step in PyTorch (/usr/bin/python3), with the ratio and peak memory of both',
    )
    .option(
      '--models <list>',
      'comma-separated: gpt2-small, gpt2-4l-v512 (4 layers of GPT-2 small, vocab 512), fedlora-tiny, qwen2.5-0.5b (24 layers, d 896, vocab 151936), qwen2.5-0.5b-4l (its first 4 layers)',
      'gpt2-small,gpt2-4l-v512,fedlora-tiny,qwen2.5-0.5b',
    )
    .option('--backends <list>', 'comma-separated backends (default: every available one)')
    .option('--steps <n>', 'measured steps per case (median reported)', '3')
    .option('--warmup <n>', 'unmeasured warmup steps', '1')
    .option('--threads <list>', 'comma-separated thread counts tried for PyTorch and native BLAS; each side is reported at its best (tfjs wasm/cpu are single-threaded)', '1,2')
    .option('--rounds <n>', 'alternate PyTorch and fedlora runs this many times and keep each side\'s best (the machine may be shared; default FEDLORA_BENCH_ROUNDS or 1)')
    .option('--max-seconds <n>', 'time limit per case; a case over it is reported as an error', '300')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { models: string; backends?: string; steps: string; warmup: string; threads: string; maxSeconds: string; rounds?: string }) => {
      const args = ['--models', o.models, '--steps', o.steps, '--warmup', o.warmup, '--threads', o.threads, '--max-seconds', o.maxSeconds];
      // Without --rounds the script reads FEDLORA_BENCH_ROUNDS itself.
      if (o.rounds) args.push('--rounds', o.rounds);
      if (o.backends) args.push('--backends', o.backends);
      await runBenchScript('train', args);
    });
  bench
    .command('dp-sgd')
    .description(
      'Tokens/s of record-level DP-SGD (ghost clipping: per-example clipping from one batched pass) against non-private ' +
        'training in the same run, per round (median and spread), on fedlora-tiny and a GPT-2-small shape (random ' +
        'weights) at batches 8, 64 and 160 (simulate\'s DP default), with a PyTorch peer (functorch per-sample gradients), and the ' +
        'time of each DP-SGD phase per step; about 30 minutes on 2 busy cores',
    )
    .option('--backend <name>', 'tfjs backend (default: the best available)')
    .option('--models <list>', 'fedlora-tiny, gpt2-small or gpt2-<layers>, comma-separated', 'fedlora-tiny,gpt2-small')
    .option('--batches <list>', 'expected Poisson batch sizes (q = 1/8 of a population of 8 x batch)', '8,64,160')
    .option('--seq <n>', 'tokens per sequence', '64')
    .option('--steps <n>', 'steps per round and case on fedlora-tiny', '2')
    .option('--gpt2-steps <n>', 'steps per round and case on GPT-2 shapes', '1')
    .option('--gpt2-seq <n>', 'tokens per sequence on GPT-2 shapes (default: --seq)')
    .option('--rounds <n>', 'rounds (each runs non-private and DP-SGD back to back; ratios per round)', '3')
    .option('--variants <list>', 'DP-SGD variants: ghost, ghostHost, ghostReweighted, perExample', 'ghost')
    .option('--no-torch', 'skip the PyTorch peer')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { backend?: string; models: string; batches: string; seq: string; steps: string; gpt2Steps: string; gpt2Seq?: string; rounds: string; variants: string; torch: boolean }) => {
      const args = ['--models', o.models, '--batches', o.batches, '--seq', o.seq, '--steps', o.steps, '--gpt2-steps', o.gpt2Steps, '--rounds', o.rounds, '--variants', o.variants];
      if (o.gpt2Seq) args.push('--gpt2-seq', o.gpt2Seq);
      if (o.backend) args.push('--backend', o.backend);
      if (!o.torch) args.push('--no-torch');
      await runBenchScript('dp-sgd', args);
    });
  bench
    .command('privacy-utility')
    .description(
      'Held-out loss and perplexity against epsilon (1, 2, 4, 8 and no DP at delta 1e-5) for record-level DP-SGD (document unit, ' +
        'noise calibrated from the budget, simulate\'s DP-SGD defaults) with LoRA and with FFA-LoRA, and institution-level DP-FedAvg; ' +
        'each point is `fedlora simulate --clients 3 --rounds 3 --secagg` with its budget flag, same seed and data (long: about 30-50 minutes on 2 busy cores)',
    )
    .option('--epsilons <list>', 'record-level target epsilons, comma-separated; inf = no DP', '1,2,4,8,inf')
    .option('--variants <list>', 'lora and/or ffa', 'lora,ffa')
    .option('--institution <list>', 'institution-level (central DP-FedAvg) target epsilons; empty for none', '8')
    .option('--clients <n>', 'institutions', '3')
    .option('--rounds <n>', 'federated rounds', '3')
    .option('--seed <s>', 'simulate seed (initial adapter, batch order, data split)', 'fedlora')
    .option('--no-secagg', 'run the points without secure aggregation')
    .option('--extra <flags>', 'extra simulate flags for every point, space-separated (e.g. "--chars-per-client 200000")', '')
    .option('--point-timeout <seconds>', 'give up a point after this long (it is reported with its error)', '1800')
    .option('--out <dir>', 'keep each point\'s ledgers under DIR/<unit>-<variant>-<epsilon> (default: a temporary directory, removed)')
    .option('--html <file>', 'also write the curves as a self-contained HTML page (vega-lite)')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { epsilons: string; variants: string; institution: string; clients: string; rounds: string; seed: string; secagg: boolean; extra: string; pointTimeout: string; out?: string; html?: string }) => {
      const args = ['--epsilons', o.epsilons, '--variants', o.variants, '--institution', o.institution, '--clients', o.clients, '--rounds', o.rounds, '--seed', o.seed, '--extra', o.extra, '--point-timeout', o.pointTimeout];
      if (!o.secagg) args.push('--no-secagg');
      if (o.out) args.push('--out', o.out);
      if (o.html) args.push('--html', o.html);
      await runBenchScript('privacy-utility', args);
    });
  bench
    .command('scale')
    .description(
      'Seconds per round and peak RSS (whole simulation with its workers; the coordinator alone, in a process of its own) of fedlora simulate ' +
        'at populations 100 / 1,000 / 10,000 and cohorts 10 / 100 / 1,000, with and without SecAgg+, then --workers 1 against 2 on a cohort of 100, ' +
        'interleaved, round 1 a reported warm-up, CPU time per process (long: run it once)',
    )
    .option('--quick', 'populations 100 and 1,000, cohorts 10 and 100, workers compared on a cohort of 20')
    .option('--populations <list>', 'comma-separated populations (default 100,1000,10000)')
    .option('--cohorts <list>', 'comma-separated cohorts (default 10,100,1000; cohorts above a population are skipped)')
    .option('--workers <n>', 'training workers of the sweep\'s cases (default: one per core)')
    .option('--max-seconds <n>', 'time limit per case; a case over it is killed and reported with its error', '1800')
    .option('--parts <list>', 'sweep, coordinator (its peak RSS alone) and/or workers (the --workers 1 vs 2 comparison)', 'sweep,coordinator,workers')
    .option('--repeat <n>', 'repetitions of the --workers 1 vs 2 comparison, interleaved 1, 2, 1, 2, ...', '2')
    .option('--workers-rounds <n>', 'rounds of each comparison run (round 1 is the warm-up)', '3')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { quick?: boolean; populations?: string; cohorts?: string; workers?: string; maxSeconds: string; parts: string; repeat: string; workersRounds: string }) => {
      const args = ['--max-seconds', o.maxSeconds, '--parts', o.parts, '--repeat', o.repeat, '--workers-rounds', o.workersRounds];
      if (o.quick) args.push('--quick');
      if (o.populations) args.push('--populations', o.populations);
      if (o.cohorts) args.push('--cohorts', o.cohorts);
      if (o.workers) args.push('--workers', o.workers);
      await runBenchScript('scale', args);
    });
  bench
    .command('secagg')
    .description(
      'SecAgg+ client masking (d=1e6, k=16) and server unmasking (n=100, 10% dropped) as ratios to the raw AES-CTR ' +
        'keystream of the same bytes in the same run, coordinator peak RSS for n=10 and n=100, and the n=500, d=1e5 point ' +
        'of Bonawitz et al. 2017 (about 1-2 minutes)',
    )
    .option('--quick', 'd = 100,000 instead of 1,000,000 (about 4x faster)')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { quick?: boolean }) => {
      await runBenchScript('secagg', o.quick ? ['--quick'] : []);
    });
}
