/**
 * `fedlora bench train`: tokens/s of a LoRA training step (frozen base, LoRA r 8 on the attention
 * projections, AdamW, clip 1.0) on every available tfjs backend, next to the same step in PyTorch
 * (Debian python3-torch, same thread count) run in the same invocation, with the ratio.
 * Models: a GPT-2-small-shaped model (12 layers, d_model 768, 12 heads, vocab 50257) and the
 * committed tiny base model; seq 128, batch 4 for both. Every case runs in its own process, so a
 * wasm abort or a timeout is reported in that case's entry instead of ending the run.
 * Prints ONE JSON document on stdout; progress on stderr.
 *
 *   node --import tsx bench/train.ts [--models gpt2-small,fedlora-tiny] [--backends wasm,cpu,...]
 *        [--steps 3] [--warmup 1] [--threads 1] [--max-seconds 300]
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
  threads: number;
  error?: string;
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

const MODELS: Record<string, { torch: Record<string, unknown> }> = {
  'gpt2-small': { torch: { layers: 12, d: 768, heads: 12, vocab: 50257, context: 1024 } },
  'fedlora-tiny': { torch: {} },
};

async function main(): Promise<void> {
  const models = arg('models', 'gpt2-small,fedlora-tiny').split(',');
  const backends = process.argv.includes('--backends') ? arg('backends', '').split(',') : await availableBackends();
  const steps = Number(arg('steps', '3'));
  const warmup = Number(arg('warmup', '1'));
  const threads = Number(arg('threads', '1'));
  const timeoutMs = Number(arg('max-seconds', '300')) * 1000;
  const seq = 128;
  const batch = 4;
  const cases: TrainBenchCase[] = [];
  for (const model of models) {
    if (!MODELS[model]) throw new RangeError(`--models: unknown model "${model}", expected gpt2-small or fedlora-tiny`);
    let shape = MODELS[model]!.torch;
    if (model === 'fedlora-tiny') {
      const cfgFile = join(root, 'models', 'fedlora-tiny', 'config.json');
      if (!existsSync(cfgFile)) throw new Error(`${cfgFile}: missing file (run fedlora model pretrain first)`);
      const { readFileSync } = await import('node:fs');
      const c = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, number>;
      shape = { layers: c.n_layer, d: c.n_embd, heads: c.n_head, vocab: c.vocab_size, context: c.n_positions };
    }
    process.stderr.write(`[${model}] torch (${threads} thread${threads > 1 ? 's' : ''})\n`);
    const torch = await runJson(
      PYTHON,
      [join(root, 'scripts', 'torch', 'bench_lora_step.py'), JSON.stringify({ ...shape, seq, batch, r: 8, targets: ['c_attn', 'attn.c_proj'], steps, warmup, threads })],
      timeoutMs,
    );
    const torchTps = 'error' in torch ? null : (torch.tokensPerSecond as number);
    for (const backend of backends) {
      process.stderr.write(`[${model}] ${backend}\n`);
      const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
      const r = await runJson(
        process.execPath,
        ['--import', 'tsx', join(here, 'train-worker.ts'), JSON.stringify({ backend, model, seq, batch, steps, warmup })],
        timeoutMs,
        env,
      );
      const tps = 'error' in r ? null : (r.tokensPerSecond as number);
      cases.push({
        model,
        backend,
        tokensPerSecond: tps,
        torchTokensPerSecond: torchTps,
        ratio: tps !== null && torchTps !== null ? tps / torchTps : null,
        medianStepMs: 'error' in r ? undefined : (r.medianStepMs as number),
        torchMedianStepMs: 'error' in torch ? undefined : (torch.medianStepMs as number),
        threads,
        ...('error' in r ? { error: String(r.error) } : 'error' in torch ? { error: `torch: ${String(torch.error)}` } : {}),
      });
    }
  }
  process.stdout.write(
    `${JSON.stringify({ cases, seq, batch, loraR: 8, steps, warmup, loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) }, null, 2)}\n`,
  );
}

await main();
