/**
 * `bench/dp-sgd.ts`: tokens/s of record-level DP-SGD training (`trainLocalDpSgd`: Poisson
 * sampling, per-example clipping, exact grid Gaussian noise, AdamW) against non-private
 * `trainLocal` at the same (expected) batch size, in the same process, on the committed tiny base
 * model with LoRA r 8 on the attention projections. Three ways to get the per-example clipping:
 *   - `ghost`: one batched forward/backward pass, per-example norms and the clipped sum from each
 *     LoRA layer's inputs and output gradients, on the device (the default of trainLocalDpSgd);
 *   - `ghostHost`: the same, with norms and sums on the host in float64 (libs/privacy lora-norms);
 *   - `ghostReweighted`: device norms, the clipped sum from a second, re-weighted backward pass;
 *   - `perExample`: one forward/backward pass per sampled sequence (the reference).
 * Prints ONE JSON document on stdout; progress on stderr.
 *
 *   npx tsx bench/dp-sgd.ts [--backend native|wasm|cpu] [--seq 64] [--batch 8] [--steps 4] [--sequences 64] [--rounds 2]
 *
 * Tokens are random ids (speed does not depend on the text). Every DP-SGD variant draws its
 * Poisson batches from the same seeded generator, so all of them process the same sequences
 * (benchmark only: training uses node:crypto). With --rounds R the cases run R times in turn and
 * each reports its best round (the machine may be shared).
 */
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel } from '@fedlora/model';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { trainLocal, trainLocalDpSgd, type DpSgdTrainOptions } from '@fedlora/train';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

function positiveInt(name: string, fallback: string): number {
  const v = Number(arg(name, fallback));
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`--${name} must be a positive integer, received ${arg(name, fallback)}`);
  return v;
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);

interface Measured {
  tokensPerSecond: number;
  tokens: number;
  seconds: number;
}

async function main(): Promise<void> {
  const seqLen = positiveInt('seq', '64');
  const batch = positiveInt('batch', '8');
  const steps = positiveInt('steps', '4');
  const population = positiveInt('sequences', '64');
  const rounds = positiveInt('rounds', '1');
  if (batch > population) throw new RangeError(`--batch (${batch}) must be <= --sequences (${population})`);
  const backend = await initBackend({ backend: arg('backend', '') || undefined });
  const model = await loadModel(DEFAULT_BASE_MODEL_DIR);
  if (seqLen > model.config.maxPositions) throw new RangeError(`--seq must be <= ${model.config.maxPositions} for this model, received ${seqLen}`);
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench-dp-sgd'));
  const rng = seededRandomBytes('bench-dp-sgd:data');
  const data = Array.from({ length: population }, () => Int32Array.from({ length: seqLen + 1 }, () => uniformInt(rng, model.config.vocabSize)));
  const common = { learningRate: 1e-3, weightDecay: 0 };
  const q = batch / population;
  const dpCommon = { ...common, samplingRate: q, clipNorm: 1, noiseMultiplier: 1 };
  const variants: Record<string, Pick<DpSgdTrainOptions, 'perExampleGradients' | 'clippedSum' | 'ghostCompute'>> = {
    ghost: { perExampleGradients: 'ghost', clippedSum: 'traces', ghostCompute: 'device' },
    ghostHost: { perExampleGradients: 'ghost', clippedSum: 'traces', ghostCompute: 'host' },
    ghostReweighted: { perExampleGradients: 'ghost', clippedSum: 'reweighted-backward' },
    perExample: { perExampleGradients: 'per-example' },
  };

  log(`backend ${backend.name}; warming up`);
  await trainLocal(model, lora, adapter, data, { ...common, steps: 1, batchSize: batch, seed: 'warmup' });
  for (const v of Object.values(variants)) await trainLocalDpSgd(model, lora, adapter, data, { ...dpCommon, ...v, steps: 1, rng: seededRandomBytes('warmup') });

  const best: Record<string, Measured & Record<string, unknown>> = {};
  const keep = (name: string, m: Measured & Record<string, unknown>): void => {
    if (!best[name] || m.tokensPerSecond > best[name]!.tokensPerSecond) best[name] = m;
  };
  for (let r = 0; r < rounds; r++) {
    log(`round ${r + 1}/${rounds}: non-private trainLocal, ${steps} steps x batch ${batch} x seq ${seqLen}`);
    let t0 = performance.now();
    const plain = await trainLocal(model, lora, adapter, data, { ...common, steps, batchSize: batch, seed: 'bench' });
    let seconds = (performance.now() - t0) / 1000;
    keep('nonPrivate', { tokensPerSecond: plain.tokens / seconds, tokens: plain.tokens, seconds });
    for (const [name, v] of Object.entries(variants)) {
      log(`round ${r + 1}/${rounds}: DP-SGD ${name}, ${steps} steps, q ${batch}/${population}, C 1, z 1`);
      t0 = performance.now();
      const dp = await trainLocalDpSgd(model, lora, adapter, data, { ...dpCommon, ...v, steps, rng: seededRandomBytes('bench-dp-sgd:sampling') });
      seconds = (performance.now() - t0) / 1000;
      keep(name, { tokensPerSecond: dp.tokens / seconds, tokens: dp.tokens, seconds, meanBatchSize: dp.meanBatchSize, clippedFraction: dp.clippedFraction, ...v });
    }
  }
  const plainTps = best.nonPrivate!.tokensPerSecond;
  const ratio = (name: string): number => plainTps / best[name]!.tokensPerSecond;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'dp-sgd',
      backend: backend.name,
      model: DEFAULT_BASE_MODEL_DIR,
      lora: { r: lora.r, targetModules: lora.targetModules },
      seqLen,
      batchSize: batch,
      samplingRate: q,
      steps,
      rounds,
      nonPrivate: best.nonPrivate,
      dpSgd: { ghost: best.ghost, ghostHost: best.ghostHost, ghostReweighted: best.ghostReweighted, perExample: best.perExample },
      slowdown: { ghost: ratio('ghost'), ghostHost: ratio('ghostHost'), ghostReweighted: ratio('ghostReweighted'), perExample: ratio('perExample') },
      ghostSpeedupOverPerExample: best.ghost!.tokensPerSecond / best.perExample!.tokensPerSecond,
      variants: {
        ghost: 'one batched forward/backward; per-example norms and clipped sum from each LoRA layer input X and output gradient G, batched matmuls on the device (default)',
        ghostHost: 'as ghost, norms and sums on the host in float64 (libs/privacy lora-norms)',
        ghostReweighted: 'ghost norms on the device, clipped sum from a second backward pass of the loss re-weighted by the clip factors',
        perExample: 'one forward/backward pass per sampled sequence (the reference)',
      },
    })}\n`,
  );
  model.dispose();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
