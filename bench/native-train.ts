/**
 * `bench/native-train.ts`: tokens/s of a LoRA training step (seq 128, batch 4, r 8 on the fused
 * attention projection, frozen base) on fedlora's CPU backends and on PyTorch, side by side in one
 * run. Prints ONE JSON document on stdout; progress goes to stderr.
 *
 *   npx tsx bench/native-train.ts [--repeats 3] [--steps 3] [--cases a,b] [--no-pure] [--no-wasm]
 *
 * Case a: 4 layers, d 768, vocab 512. Case b: GPT-2 small (12 layers, d 768, vocab 50257).
 * Every configuration runs in its own process (peak RSS is its own; a wasm abort is caught and
 * reported). Native and PyTorch runs are interleaved and repeated because the machine is shared:
 * the report gives medians, the spread, and CPU time per step (steadier than wall time under load).
 */
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';

interface RunResult {
  backend: string;
  path?: string;
  medianStepMs?: number;
  medianStepCpuMs?: number;
  tokensPerSec?: number;
  peakRssMb?: number;
  stepMs?: number[];
  topKernels?: { kernel: string; ms: number; calls: number }[];
  error?: string;
}

interface Config {
  id: string;
  kind: 'node' | 'torch';
  payload: Record<string, unknown>;
  env?: Record<string, string>;
  repeat: boolean;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function run(cfg: Config, timeoutMs: number): Promise<RunResult> {
  const [cmd, args] =
    cfg.kind === 'torch'
      ? [PYTHON, [join(here, 'torch', 'lora_step.py'), JSON.stringify(cfg.payload)]]
      : [process.execPath, ['--import', 'tsx', join(here, 'native-train-worker.ts'), JSON.stringify(cfg.payload)]];
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...cfg.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.startsWith('[')) process.stderr.write(`  ${cfg.id}: ${line}\n`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      try {
        if (code === 0) return resolve(JSON.parse(last) as RunResult);
      } catch {
        // fall through to the error report
      }
      const tail = err.trim().split('\n').filter((l) => !l.startsWith('[')).slice(-3).join(' | ');
      resolve({ backend: cfg.id, error: `exit ${code ?? signal}${signal === 'SIGKILL' ? ' (timed out)' : ''}: ${tail.slice(0, 400)}` });
    });
  });
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

function summarise(runs: RunResult[]) {
  const ok = runs.filter((r) => !r.error && r.tokensPerSec !== undefined);
  const tps = ok.map((r) => r.tokensPerSec!);
  const cpu = ok.map((r) => r.medianStepCpuMs!).filter((x) => x !== undefined);
  return {
    path: ok[0]?.path,
    medianTokensPerSec: median(tps),
    minTokensPerSec: tps.length ? Math.min(...tps) : undefined,
    maxTokensPerSec: tps.length ? Math.max(...tps) : undefined,
    medianStepCpuMs: median(cpu),
    peakRssMb: median(ok.map((r) => r.peakRssMb!)),
    runs: runs.map((r) => (r.error ? { error: r.error } : { tokensPerSec: r.tokensPerSec, stepMs: r.stepMs, stepCpuMs: r.medianStepCpuMs })),
    topKernels: ok.find((r) => r.topKernels)?.topKernels,
  };
}

async function main(): Promise<void> {
  const repeats = Number(arg('repeats', '3'));
  const steps = Number(arg('steps', '3'));
  const cases = arg('cases', 'a,b').split(',');
  const pure = !process.argv.includes('--no-pure');
  const wasm = !process.argv.includes('--no-wasm');
  const shapes: Record<string, { layers: number; vocab: number }> = { a: { layers: 4, vocab: 512 }, b: { layers: 12, vocab: 50257 } };
  const loadStart = loadavg();
  const report: Record<string, unknown>[] = [];
  for (const c of cases) {
    const shape = shapes[c];
    if (!shape) throw new RangeError(`--cases: expected a and/or b, received ${JSON.stringify(c)}`);
    // GPT-2 small steps take ~10 s on a busy 2-core machine: fewer of them per run.
    const base = { ...shape, steps: c === 'b' ? Math.min(steps, 2) : steps, warmup: 1, maxSeconds: 300, profile: false };
    const configs: Config[] = [
      { id: 'cpu-native-1t', kind: 'node', payload: { ...base, backend: 'cpu-native' }, env: { FEDLORA_NUM_THREADS: '1' }, repeat: true },
      { id: 'cpu-native-2t', kind: 'node', payload: { ...base, backend: 'cpu-native' }, env: { FEDLORA_NUM_THREADS: '2' }, repeat: true },
      { id: 'torch-1t', kind: 'torch', payload: { ...base, threads: 1 }, repeat: true },
      { id: 'torch-2t', kind: 'torch', payload: { ...base, threads: 2 }, repeat: true },
    ];
    if (wasm) configs.push({ id: 'wasm', kind: 'node', payload: { ...base, backend: 'wasm', steps: 2, maxSeconds: 240 }, repeat: false });
    if (pure && c === 'a') {
      configs.push({ id: 'cpu-pure', kind: 'node', payload: { ...base, backend: 'cpu-pure', steps: 0, warmup: 0, profile: true }, repeat: false });
    }
    const runs = new Map<string, RunResult[]>(configs.map((k) => [k.id, []]));
    for (let r = 0; r < repeats; r++) {
      for (const cfg of configs) {
        if (!cfg.repeat && r > 0) continue;
        // The first native run also profiles kernels (an extra step after the timed ones).
        const payload = cfg.id === 'cpu-native-1t' && r === 0 ? { ...cfg.payload, profile: true } : cfg.payload;
        process.stderr.write(`[native-train] case ${c}, ${cfg.id}, repeat ${r + 1}/${repeats}\n`);
        runs.get(cfg.id)!.push(await run({ ...cfg, payload }, 900_000));
      }
    }
    const results = Object.fromEntries([...runs].map(([id, rs]) => [id, summarise(rs)]));
    const best = (ids: string[]) => Math.max(...ids.map((id) => results[id]?.medianTokensPerSec ?? 0));
    const bestFedlora = best(['cpu-native-1t', 'cpu-native-2t']);
    const bestTorch = best(['torch-1t', 'torch-2t']);
    const cpuOf = (id: string) => results[id]?.medianStepCpuMs;
    report.push({
      case: c,
      shape: { ...shape, dModel: 768, heads: 12, seq: 128, batch: 4, rank: 8, tokensPerStep: 512 },
      results,
      bestFedloraTokensPerSec: bestFedlora,
      bestTorchTokensPerSec: bestTorch,
      ratioBestFedloraToBestTorch: bestTorch > 0 ? Math.round((bestFedlora / bestTorch) * 100) / 100 : null,
      ratioCpuTimeTorch1tToNative1t:
        cpuOf('torch-1t') && cpuOf('cpu-native-1t') ? Math.round((cpuOf('torch-1t')! / cpuOf('cpu-native-1t')!) * 100) / 100 : null,
      topKernelsBefore: results['cpu-pure']?.topKernels,
      topKernelsAfter: results['cpu-native-1t']?.topKernels,
    });
  }
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'native-train', cpus: availableParallelism(), loadAvgStart: loadStart, loadAvgEnd: loadavg(), repeats, steps, cases: report }, null, 2)}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
