/**
 * `fedlora bench train`: tokens/s of a LoRA training step (frozen base, LoRA r 8 on the attention
 * projections, AdamW, clip 1.0) on every available tfjs backend, next to the same step in PyTorch
 * (Debian python3-torch) run in the same invocation, with the ratio. `--threads` takes a list of
 * thread counts: PyTorch and the multi-threaded backends (native, tfjs-node) run at each, and each
 * side is reported at its best count (issue 7: fedlora's best CPU backend vs PyTorch's best
 * thread count). Peak resident memory (getrusage maxrss) is reported for both sides.
 * Models: a GPT-2-small-shaped model (12 layers, d_model 768, 12 heads, vocab 50257), issue 7's
 * small case `gpt2-4l-v512` (the same blocks, 4 layers, vocab 512) and the committed tiny base
 * model (4 layers, d_model 128, vocab 1024), seq 128, batch 4; and a model of today's size,
 * `qwen2.5-0.5b` (Qwen2.5-0.5B's shapes: 24 layers, d 896, 14 heads / 2 KV heads, MLP 4864,
 * vocab 151936, tied, q/k/v biases; random weights; LoRA on q/k/v/o_proj), seq 128, batch 1
 * (`qwen2.5-0.5b-4l`: its first 4 layers, for a quicker run). Every case runs in its own process, so a
 * wasm abort or a timeout is reported in that case's entry instead of ending the run.
 * Prints ONE JSON document on stdout; progress on stderr.
 *
 *   node --import tsx bench/train.ts [--models gpt2-small,gpt2-4l-v512,fedlora-tiny] [--backends wasm,cpu,...]
 *        [--steps 3] [--warmup 1] [--threads 1,2] [--rounds 1] [--max-seconds 300]
 *
 * `--rounds N` repeats every run N times, alternating PyTorch and fedlora, and keeps each side's
 * best: on a shared machine that approaches each side's unloaded speed (FEDLORA_BENCH_ROUNDS=N
 * does the same through `fedlora bench train`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const PYTHON = '/usr/bin/python3';

/** One row of the report. */
export interface TrainBenchCase {
  model: string;
  backend: string;
  tokensPerSecond: number | null;
  torchTokensPerSecond: number | null;
  ratio: number | null;
  medianStepMs?: number;
  torchMedianStepMs?: number;
  /** Thread count of fedlora's best run (1 for the single-threaded tfjs backends). */
  threads: number;
  /** PyTorch's best thread count. */
  torchThreads?: number;
  /** Peak resident set of the worker process at fedlora's best run, MiB. */
  peakRssMb?: number;
  /** Peak resident set of the PyTorch process at its best thread count, MiB. */
  torchPeakRssMb?: number;
  /** Every thread count tried for this backend. */
  runs?: ThreadRun[];
  /** Sequences per step (both sides). */
  batch?: number;
  /** Measured and warmup steps per run (both sides). */
  steps?: number;
  warmup?: number;
  /**
   * PyTorch's / fedlora's process CPU time per step at 1 thread (each side's lowest median over the
   * rounds): time-sharing with other processes inflates wall time but hardly CPU time, so on a
   * busy machine this ratio is the steadier comparison of the two implementations.
   */
  cpuRatio1Thread?: number;
  error?: string;
}

/** One process's result at one thread count. */
export interface ThreadRun {
  threads: number;
  tokensPerSecond: number | null;
  medianStepMs?: number;
  /** Median process CPU time (all threads) per measured step. */
  medianStepCpuMs?: number;
  peakRssMb?: number;
  error?: string;
}

/** Backends whose speed depends on the thread count. */
const THREADED = new Set(['native', 'tfjs-node', 'tfjs-node-gpu']);

// Runs bench_lora_step.py in-process and adds the process's peak RSS to its JSON line, and the
// median CPU time per measured step: the script reads time.perf_counter() once before each step
// and once after each measured one, so those calls (wrapped here) delimit the steps.
const TORCH_RUNNER = [
  'import io, json, resource, runpy, sys, contextlib, time',
  'buf = io.StringIO()',
  'sys.argv = sys.argv[1:]',
  'cfg = json.loads(sys.argv[1])',
  'calls = []',
  'wall = time.perf_counter',
  'def timed():',
  '    t = wall()',
  '    calls.append(time.process_time())',
  '    return t',
  'time.perf_counter = timed',
  'with contextlib.redirect_stdout(buf): runpy.run_path(sys.argv[0], run_name="__main__")',
  'out = json.loads(buf.getvalue().strip().splitlines()[-1])',
  'out["peakRssMb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)',
  'w, n = cfg.get("warmup", 1), cfg.get("steps", 3)',
  'if len(calls) == w + 2 * n:',
  '    cpu = sorted((calls[w + 2 * i + 1] - calls[w + 2 * i]) * 1000 for i in range(n))',
  '    out["medianStepCpuMs"] = cpu[len(cpu) // 2]',
  'print(json.dumps(out))',
].join('\n');

function threadList(raw: string): number[] {
  const list = raw.split(',').map((x) => Number(x.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(`--threads: expected a comma-separated list of positive integers, received "${raw}"`);
  }
  return [...new Set(list)];
}

function toRun(threads: number, r: Record<string, unknown> | { error: string }): ThreadRun {
  if ('error' in r) return { threads, tokensPerSecond: null, error: String(r.error) };
  return {
    threads,
    tokensPerSecond: r.tokensPerSecond as number,
    medianStepMs: r.medianStepMs as number,
    medianStepCpuMs: r.medianStepCpuMs as number | undefined,
    peakRssMb: r.peakRssMb as number | undefined,
  };
}

/** The lowest median CPU time per step among 1-thread runs, if any reported one. */
function bestCpuMs1Thread(runs: ThreadRun[]): number | undefined {
  const xs = runs.filter((r) => r.threads === 1 && r.medianStepCpuMs !== undefined).map((r) => r.medianStepCpuMs!);
  return xs.length > 0 ? Math.min(...xs) : undefined;
}

/** The run with the most tokens/s, or the first (failed) one. */
function best(runs: ThreadRun[]): ThreadRun {
  return runs.reduce((a, b) => ((b.tokensPerSecond ?? -1) > (a.tokensPerSecond ?? -1) ? b : a));
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Runs a command, returning its last stdout line parsed as JSON, or an error string. */
function runJson(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown> | { error: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      process.stderr.write(b);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) return resolve(JSON.parse(last) as Record<string, unknown>);
      const why = signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : `exit ${code ?? signal}`;
      const tail = err
        .split('\n')
        .filter((l) => !/^\s+at /.test(l) && /error|abort|memory|out of bounds/i.test(l))
        .slice(-2)
        .join(' | ');
      resolve({ error: `${why}${tail ? `: ${tail.slice(0, 300)}` : ''}` });
    });
  });
}

/** Backends worth trying here: always wasm and cpu; native and tfjs-node(-gpu) when installed. */
async function availableBackends(): Promise<string[]> {
  const out: string[] = [];
  const require = createRequire(import.meta.url);
  for (const pkg of ['tfjs-node-gpu', 'tfjs-node']) {
    try {
      require.resolve(`@tensorflow/${pkg}`);
      out.push(pkg);
    } catch {
      // not installed: skipped
    }
  }
  try {
    const native = (await import('@fedlora/native-cpu')) as { loadNativeCpu?: () => { available: boolean } };
    if (native.loadNativeCpu?.().available) out.push('native');
  } catch {
    // not built: skipped
  }
  return [...out, 'wasm', 'cpu'];
}

/**
 * Bench models. A step of the small models is short (about 40 ms for fedlora-tiny), so a median of
 * 3 steps is mostly noise on a shared machine: they run `stepScale` times the requested steps and
 * at least `minWarmup` warmup steps, the same on both sides (training runs thousands of steps, so
 * the steady-state step is what matters).
 */
const QWEN25_05B = { d: 896, heads: 14, kvHeads: 2, inter: 4864, vocab: 151936, qkvBias: true, theta: 1e6, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] };
const MODELS: Record<string, { torch: Record<string, unknown>; stepScale?: number; minWarmup?: number; script?: string; batch?: number }> = {
  'gpt2-small': { torch: { layers: 12, d: 768, heads: 12, vocab: 50257, context: 1024 } },
  'gpt2-4l-v512': { torch: { layers: 4, d: 768, heads: 12, vocab: 512, context: 1024 }, stepScale: 2, minWarmup: 2 },
  'fedlora-tiny': { torch: {}, stepScale: 10, minWarmup: 3 },
  // A step is seconds long: batch 1, and the Llama/Qwen2-shaped PyTorch peer.
  'qwen2.5-0.5b': { torch: { ...QWEN25_05B, layers: 24 }, script: 'bench_lora_step_llama.py', batch: 1 },
  'qwen2.5-0.5b-4l': { torch: { ...QWEN25_05B, layers: 4 }, script: 'bench_lora_step_llama.py', batch: 1 },
};
/** Run when --models is not given. */
const DEFAULT_MODELS = ['gpt2-small', 'gpt2-4l-v512', 'fedlora-tiny', 'qwen2.5-0.5b'];

function cpuRatio(torchMs: number | undefined, mineMs: number | undefined): { cpuRatio1Thread?: number } {
  return torchMs !== undefined && mineMs !== undefined && mineMs > 0 ? { cpuRatio1Thread: torchMs / mineMs } : {};
}

async function main(): Promise<void> {
  const models = arg('models', DEFAULT_MODELS.join(',')).split(',');
  const backends = process.argv.includes('--backends') ? arg('backends', '').split(',') : await availableBackends();
  const steps = Number(arg('steps', '3'));
  const warmup = Number(arg('warmup', '1'));
  const threads = threadList(arg('threads', '1'));
  // FEDLORA_BENCH_ROUNDS reaches this through `fedlora bench train`, which has no --rounds option.
  const roundsRaw = arg('rounds', process.env['FEDLORA_BENCH_ROUNDS'] ?? '1');
  const rounds = Number(roundsRaw);
  if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`--rounds: expected a positive integer, received "${roundsRaw}"`);
  const timeoutMs = Number(arg('max-seconds', '300')) * 1000;
  const seq = 128;
  const cases: TrainBenchCase[] = [];
  const torchRuns: Record<string, ThreadRun[]> = {};
  for (const model of models) {
    if (!MODELS[model]) throw new RangeError(`--models: unknown model "${model}", expected one of ${Object.keys(MODELS).join(', ')}`);
    let shape = MODELS[model]!.torch;
    if (model === 'fedlora-tiny') {
      const cfgFile = join(root, 'models', 'fedlora-tiny', 'config.json');
      if (!existsSync(cfgFile)) throw new Error(`${cfgFile}: missing file (run fedlora model pretrain first)`);
      const { readFileSync } = await import('node:fs');
      const c = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, number>;
      shape = { layers: c.n_layer, d: c.n_embd, heads: c.n_head, vocab: c.vocab_size, context: c.n_positions };
    }
    const mSteps = steps * (MODELS[model]!.stepScale ?? 1);
    const mWarmup = Math.max(warmup, MODELS[model]!.minWarmup ?? 0);
    const batch = MODELS[model]!.batch ?? 4;
    const script = MODELS[model]!.script ?? 'bench_lora_step.py';
    const torchArgs = JSON.stringify({ targets: ['c_attn', 'attn.c_proj'], ...shape, seq, batch, r: 8, steps: mSteps, warmup: mWarmup });
    const tRuns: ThreadRun[] = [];
    const byBackend = new Map<string, ThreadRun[]>(backends.map((b) => [b, []]));
    // Rounds alternate PyTorch and fedlora so both sides sample the same (shared, noisy) machine.
    for (let round = 0; round < rounds; round++) {
      for (const t of threads) {
        process.stderr.write(`[${model}] torch (${t} thread${t > 1 ? 's' : ''}, round ${round + 1}/${rounds})\n`);
        const cfg = JSON.stringify({ ...(JSON.parse(torchArgs) as object), threads: t });
        tRuns.push(toRun(t, await runJson(PYTHON, ['-c', TORCH_RUNNER, join(root, 'scripts', 'torch', script), cfg], timeoutMs)));
      }
      for (const backend of backends) {
        for (const t of THREADED.has(backend) ? threads : [1]) {
          process.stderr.write(`[${model}] ${backend} (${t} thread${t > 1 ? 's' : ''}, round ${round + 1}/${rounds})\n`);
          const n = String(t);
          const env = { ...process.env, FEDLORA_NUM_THREADS: n, OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n };
          const r = await runJson(
            process.execPath,
            ['--import', 'tsx', join(here, 'train-worker.ts'), JSON.stringify({ backend, model, seq, batch, steps: mSteps, warmup: mWarmup })],
            timeoutMs,
            env,
          );
          byBackend.get(backend)!.push(toRun(t, r));
        }
      }
    }
    torchRuns[model] = tRuns;
    const torch = best(tRuns);
    const torchTps = torch.tokensPerSecond;
    for (const backend of backends) {
      const runs = byBackend.get(backend)!;
      const mine = best(runs);
      const tps = mine.tokensPerSecond;
      cases.push({
        model,
        backend,
        tokensPerSecond: tps,
        torchTokensPerSecond: torchTps,
        ratio: tps !== null && torchTps !== null ? tps / torchTps : null,
        medianStepMs: mine.medianStepMs,
        torchMedianStepMs: torch.medianStepMs,
        threads: mine.threads,
        torchThreads: torch.threads,
        peakRssMb: mine.peakRssMb,
        torchPeakRssMb: torch.peakRssMb,
        runs,
        batch,
        steps: mSteps,
        warmup: mWarmup,
        ...cpuRatio(bestCpuMs1Thread(tRuns), bestCpuMs1Thread(runs)),
        ...(mine.error !== undefined ? { error: mine.error } : torch.error !== undefined ? { error: `torch: ${torch.error}` } : {}),
      });
    }
  }
  process.stdout.write(
    `${JSON.stringify({ cases, torch: torchRuns, seq, batch: 4, loraR: 8, steps, warmup, threads, rounds, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) }, null, 2)}\n`,
  );
}

await main();
