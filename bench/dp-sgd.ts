/**
 * `bench/dp-sgd.ts`: tokens/s of record-level DP-SGD training (`trainLocalDpSgd`: Poisson
 * sampling, per-example clipping, exact grid Gaussian noise, AdamW) against non-private
 * `trainLocal` at the same (expected) batch size, in the same process, for each model shape and
 * batch size asked for, with LoRA r 8 on the attention projections:
 *   - `fedlora-tiny`: the committed tiny base (4 layers, d 128, vocab 1024);
 *   - `gpt2-small`: GPT-2 small's shape (12 layers, d 768, 12 heads, vocab 50257), random weights;
 *     `gpt2-<L>` takes its first L layers' shape when 12 do not fit the time or memory at hand.
 * DP-SGD variants (how the per-example clipping is done):
 *   - `ghost` (the default of trainLocalDpSgd): one batched forward/backward pass, each example's
 *     LoRA gradient formed from the layer inputs and output gradients on the device, clipped and
 *     summed on the host (book-keeping: no second backward pass);
 *   - `ghostHost`: the same, with norms and sums on the host in float64 (libs/privacy lora-norms);
 *   - `ghostReweighted`: device norms, the clipped sum from a second, re-weighted backward pass;
 *   - `perExample`: one forward/backward pass per sampled sequence (the reference).
 * Every round runs non-private training and each variant back to back and reports the ratio
 * DP-SGD tokens/s / non-private tokens/s of that round, so a ratio compares runs under the same
 * machine load; the summary gives the median and the spread (min, max) over rounds, of wall-clock
 * and of process CPU time (steadier on a shared machine), and `stepMs`, the milliseconds per step
 * of each DP-SGD phase (forward/backward, per-example gradients, clipped grid sum, noise, ...)
 * beside the non-private step's. A PyTorch peer (bench/torch/dp_sgd_step.py:
 * per-sample gradients by functorch vmap, fixed batch) runs the same shapes in the same run.
 * Prints ONE JSON document on stdout; progress on stderr.
 *
 *   npx tsx bench/dp-sgd.ts [--backend native|wasm|cpu] [--models fedlora-tiny,gpt2-small]
 *     [--batches 8,64,160] [--seq 64] [--steps 2] [--gpt2-steps 1] [--gpt2-seq 64] [--rounds 3] [--variants ghost,perExample] [--no-torch] [--torch-threads 1]
 *
 * Tokens are random ids (speed does not depend on the text). The population is 8 x the batch
 * (q = 1/8); every DP-SGD variant draws its Poisson batches from the same seeded generator, so all
 * of them process the same sequences (benchmark only: training uses node:crypto).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CausalLM, DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, loadModel, parseModelConfig, type TextTokenizer } from '@fedlora/model';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { DP_SGD_PHASES, emptyPhaseTimes, trainLocal, trainLocalDpSgd, type DpSgdProfiler, type DpSgdTrainOptions } from '@fedlora/train';

const PYTHON = '/usr/bin/python3';
const here = dirname(fileURLToPath(import.meta.url));
const GPT2_SMALL = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;

type Variant = 'ghost' | 'ghostHost' | 'ghostReweighted' | 'perExample';
const VARIANTS: Record<Variant, Pick<DpSgdTrainOptions, 'perExampleGradients' | 'clippedSum' | 'ghostCompute'>> = {
  ghost: { perExampleGradients: 'ghost', clippedSum: 'traces', ghostCompute: 'device' },
  ghostHost: { perExampleGradients: 'ghost', clippedSum: 'traces', ghostCompute: 'host' },
  ghostReweighted: { perExampleGradients: 'ghost', clippedSum: 'reweighted-backward' },
  perExample: { perExampleGradients: 'per-example' },
};

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function positiveInts(name: string, fallback: string): number[] {
  return arg(name, fallback)
    .split(',')
    .map((s) => {
      const v = Number(s);
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} takes positive integers separated by commas, received ${arg(name, fallback)}`);
      return v;
    });
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);

/** Median and spread of a list of numbers. */
interface Spread {
  median: number;
  min: number;
  max: number;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function spread(v: number[]): Spread {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]! };
}

/** Tokens per wall-clock second and per process-CPU second of `run`. */
async function measure(run: () => Promise<{ tokens: number }>): Promise<{ tps: number; cpuTps: number; seconds: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const { tokens } = await run();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { tps: tokens / seconds, cpuTps: tokens / ((cpu.user + cpu.system) / 1e6), seconds };
}

async function buildModel(name: string): Promise<CausalLM> {
  if (name === 'fedlora-tiny') return loadModel(DEFAULT_BASE_MODEL_DIR);
  const m = /^gpt2-(small|\d+)$/.exec(name);
  if (!m) throw new RangeError(`--models takes fedlora-tiny, gpt2-small or gpt2-<layers>, received ${name}`);
  const config = parseModelConfig({ ...GPT2_SMALL, n_layer: m[1] === 'small' ? 12 : Number(m[1]) });
  return new CausalLM(config, NO_TEXT, initWeights(config, 1));
}

function torchPeer(payload: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [join(here, 'torch', 'dp_sgd_step.py'), JSON.stringify(payload)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.startsWith('[torch]')) log(`  ${line}`);
    });
    child.on('error', (e) => resolve({ error: e.message }));
    child.on('close', (code) => {
      try {
        resolve(code === 0 ? JSON.parse(out.trim().split('\n').pop()!) : { error: `exit ${code}: ${err.trim().split('\n').pop()}` });
      } catch {
        resolve({ error: `unreadable output: ${out.slice(0, 200)}` });
      }
    });
  });
}

async function benchCase(model: CausalLM, name: string, batch: number, o: { seqLen: number; steps: number; rounds: number; variants: Variant[] }): Promise<Record<string, unknown>> {
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench-dp-sgd'));
  const rng = seededRandomBytes(`bench-dp-sgd:data:${batch}`);
  const population = 8 * batch;
  const data = Array.from({ length: population }, () => Int32Array.from({ length: o.seqLen + 1 }, () => uniformInt(rng, model.config.vocabSize)));
  const common = { learningRate: 1e-3, weightDecay: 0 };
  const dp = { ...common, samplingRate: batch / population, clipNorm: 1, noiseMultiplier: 1 };
  const plain = (steps: number) => trainLocal(model, lora, adapter, data, { ...common, steps, batchSize: batch, seed: 'bench' });
  const priv = (v: Variant, steps: number, seed: string, profiler?: DpSgdProfiler) =>
    trainLocalDpSgd(model, lora, adapter, data, { ...dp, ...VARIANTS[v], steps, rng: seededRandomBytes(seed), ...(profiler ? { profiler } : {}) });
  log(`${name}, batch ${batch}: warming up`);
  await plain(1);
  for (const v of o.variants) await priv(v, 1, 'warmup');
  const rounds: Array<Record<string, { tps: number; cpuTps: number; seconds: number }>> = [];
  // Milliseconds per step of each DP-SGD phase, per variant and round (dp-sgd-phases.ts), next to the non-private step's.
  const phases: Record<string, Array<Record<string, number>>> = Object.fromEntries(o.variants.map((v) => [v, []]));
  const plainStepMs: number[] = [];
  let meanBatch = 0;
  for (let r = 0; r < o.rounds; r++) {
    const row: Record<string, { tps: number; cpuTps: number; seconds: number }> = { nonPrivate: await measure(() => plain(o.steps)) };
    plainStepMs.push((1000 * row.nonPrivate!.seconds) / o.steps);
    for (const v of o.variants) {
      const profiler = { times: emptyPhaseTimes(), now: () => performance.now() };
      row[v] = await measure(async () => {
        const res = await priv(v, o.steps, 'bench-dp-sgd:sampling', profiler);
        meanBatch = res.meanBatchSize;
        return res;
      });
      const perStep: Record<string, number> = Object.fromEntries(DP_SGD_PHASES.map((p) => [p, profiler.times[p] / o.steps]));
      perStep.other = (1000 * row[v]!.seconds) / o.steps - DP_SGD_PHASES.reduce((n, p) => n + perStep[p]!, 0);
      phases[v]!.push(perStep);
    }
    log(`${name}, batch ${batch}, round ${r + 1}/${o.rounds}: ${Object.entries(row).map(([k, m]) => `${k} ${m.tps.toFixed(0)} tok/s`).join(', ')}`);
    rounds.push(row);
  }
  const tps = (k: string) => spread(rounds.map((x) => x[k]!.tps));
  const ratio = (v: Variant) => spread(rounds.map((x) => x[v]!.tps / x.nonPrivate!.tps));
  const cpuRatio = (v: Variant) => spread(rounds.map((x) => x[v]!.cpuTps / x.nonPrivate!.cpuTps));
  const c = model.config;
  return {
    model: name,
    shape: { layers: c.numLayers, dModel: c.hiddenSize, vocab: c.vocabSize },
    batchSize: batch,
    samplingRate: dp.samplingRate,
    meanPoissonBatch: meanBatch,
    tokensPerSecond: Object.fromEntries(['nonPrivate', ...o.variants].map((k) => [k, tps(k)])),
    ratio: Object.fromEntries(o.variants.map((v) => [v, ratio(v)])),
    cpuRatio: Object.fromEntries(o.variants.map((v) => [v, cpuRatio(v)])),
    // Medians over rounds, ms per step: where a DP-SGD step's time goes, beside the non-private step.
    stepMs: {
      nonPrivate: spread(plainStepMs).median,
      ...Object.fromEntries(o.variants.map((v) => [v, Object.fromEntries([...DP_SGD_PHASES, 'other'].map((p) => [p, round1(spread(phases[v]!.map((x) => x[p]!)).median)]))])),
    },
  };
}

async function main(): Promise<void> {
  const seqLen = positiveInts('seq', '64')[0]!;
  // 160: the expected batch of `fedlora simulate --dp-sgd-epsilon` (apps/cli/src/simulate/dp-defaults.ts).
  const batches = positiveInts('batches', arg('batch', '8,64,160'));
  const steps = positiveInts('steps', '2')[0]!;
  // GPT-2-shaped models: fewer steps per round (a step at batch 64 takes tens of seconds on 2 cores).
  const bigSteps = positiveInts('gpt2-steps', '1')[0]!;
  const bigSeq = positiveInts('gpt2-seq', String(seqLen))[0]!;
  const rounds = positiveInts('rounds', '3')[0]!;
  const models = arg('models', 'fedlora-tiny,gpt2-small').split(',');
  const variants = arg('variants', 'ghost').split(',') as Variant[];
  for (const v of variants) if (!(v in VARIANTS)) throw new RangeError(`--variants takes ${Object.keys(VARIANTS).join(', ')}, received ${v}`);
  const backend = await initBackend({ backend: arg('backend', '') || undefined });
  const threads = Number(process.env['FEDLORA_NUM_THREADS'] ?? 2);
  // One torch thread by default: on a shared, oversubscribed machine torch's OpenMP threads spin (10x slower at 2).
  const torchThreads = positiveInts('torch-threads', '1')[0]!;
  const cases: Array<Record<string, unknown>> = [];
  for (const name of models) {
    const model = await buildModel(name);
    const tiny = name === 'fedlora-tiny';
    const caseSteps = tiny ? steps : bigSteps;
    const caseSeq = tiny ? seqLen : bigSeq;
    if (caseSeq > model.config.maxPositions) throw new RangeError(`--seq must be <= ${model.config.maxPositions} for ${name}, received ${caseSeq}`);
    for (const batch of batches) {
      const row = await benchCase(model, name, batch, { seqLen: caseSeq, steps: caseSteps, rounds, variants });
      Object.assign(row, { seqLen: caseSeq, steps: caseSteps });
      if (!process.argv.includes('--no-torch')) {
        log(`${name}, batch ${batch}: PyTorch peer`);
        const c = model.config;
        // One torch round for GPT-2 shapes (its single-threaded steps are the slowest part of the run).
        const torchRounds = tiny ? rounds : 1;
        row.torch = await torchPeer({ layers: c.numLayers, dModel: c.hiddenSize, heads: c.numHeads, vocab: c.vocabSize, seq: caseSeq, batch, rank: 8, threads: torchThreads, steps: caseSteps, rounds: torchRounds });
      }
      cases.push(row);
    }
    model.dispose();
  }
  const goal = cases
    .filter((c) => (c.batchSize as number) >= 64)
    .map((c) => ({ model: c.model, batchSize: c.batchSize, ghostRatio: (c.ratio as Record<string, Spread>).ghost?.median, ghostCpuRatio: (c.cpuRatio as Record<string, Spread>).ghost?.median }));
  process.stdout.write(
    `${JSON.stringify({
      bench: 'dp-sgd',
      backend: backend.name,
      threads,
      torchThreads,
      lora: { r: 8, targetModules: ['c_attn', 'attn.c_proj'] },
      seqLen,
      steps,
      rounds,
      goal: {
        statement: 'DP-SGD (ghost) >= 0.7 x non-private tokens/s at batch >= 64 (median over rounds); metCpu: the same on tokens per process-CPU second',
        cases: goal,
        met: goal.length > 0 && goal.every((g) => (g.ghostRatio ?? 0) >= 0.7),
        metCpu: goal.length > 0 && goal.every((g) => (g.ghostCpuRatio ?? 0) >= 0.7),
      },
      cases,
    })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
