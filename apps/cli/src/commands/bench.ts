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
      'Tokens/s of a LoRA training step (seq 128, batch 4, r 8 on attention) for a GPT-2-small-shaped model and the ' +
        'committed tiny base, on every available backend, next to the same step in PyTorch (/usr/bin/python3), with the ratio',
    )
    .option('--models <list>', 'comma-separated: gpt2-small, fedlora-tiny', 'gpt2-small,fedlora-tiny')
    .option('--backends <list>', 'comma-separated backends (default: every available one)')
    .option('--steps <n>', 'measured steps per case (median reported)', '3')
    .option('--warmup <n>', 'unmeasured warmup steps', '1')
    .option('--threads <n>', 'threads for PyTorch and native BLAS (tfjs wasm/cpu are single-threaded)', '1')
    .option('--max-seconds <n>', 'time limit per case; a case over it is reported as an error', '300')
    .option('--json', 'print one JSON document on stdout (always the case)')
    .action(async (o: { models: string; backends?: string; steps: string; warmup: string; threads: string; maxSeconds: string }) => {
      const args = ['--models', o.models, '--steps', o.steps, '--warmup', o.warmup, '--threads', o.threads, '--max-seconds', o.maxSeconds];
      if (o.backends) args.push('--backends', o.backends);
      await runBenchScript('train', args);
    });
}
