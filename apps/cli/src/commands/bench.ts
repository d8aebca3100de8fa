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
      'Tokens/s of record-level DP-SGD on the committed tiny base (LoRA r 8): per-example clipping from one batched pass ' +
        '(ghost; norms and sums on the device or the host, or a re-weighted second pass) against one pass per sequence, ' +
        'next to non-private training, in the same run',
    )
    .option('--backend <name>', 'tfjs backend (default: the best available)')
    .option('--seq <n>', 'tokens per sequence', '64')
    .option('--batch <n>', 'expected Poisson batch size (q = batch / sequences)', '8')
    .option('--sequences <n>', 'training sequences (the population sampled from)', '64')
    .option('--steps <n>', 'measured steps per case', '4')
    .option('--rounds <n>', 'run the cases this many times in turn and keep each one\'s best (the machine may be shared)', '1')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { backend?: string; seq: string; batch: string; sequences: string; steps: string; rounds: string }) => {
      const args = ['--seq', o.seq, '--batch', o.batch, '--sequences', o.sequences, '--steps', o.steps, '--rounds', o.rounds];
      if (o.backend) args.push('--backend', o.backend);
      await runBenchScript('dp-sgd', args);
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
