/**
 * `bench/dp-sgd.ts`: tokens/s of record-level DP-SGD training (`trainLocalDpSgd`: Poisson
 * sampling, one backward pass per sampled sequence, per-example clipping, exact grid Gaussian
 * noise, AdamW) against non-private `trainLocal` at the same (expected) batch size, in the same
 * process, on the committed tiny base model with LoRA r 8 on the attention projections.
 * Prints ONE JSON document on stdout; progress on stderr.
 *
 *   npx tsx bench/dp-sgd.ts [--backend wasm] [--seq 64] [--batch 8] [--steps 4] [--sequences 64]
 *
 * Tokens are random ids (speed does not depend on the text). The DP-SGD rate counts the
 * sequences actually sampled, so a Poisson batch smaller or larger than expected is fair.
 */
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel } from '@fedlora/model';
import { cryptoRandomBytes, seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { trainLocal, trainLocalDpSgd } from '@fedlora/train';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const log = (m: string): void => void process.stderr.write(`${m}\n`);

async function main(): Promise<void> {
  const seqLen = Number(arg('seq', '64'));
  const batch = Number(arg('batch', '8'));
  const steps = Number(arg('steps', '4'));
  const population = Number(arg('sequences', '64'));
  const backend = await initBackend({ backend: arg('backend', '') || undefined });
  const model = await loadModel(DEFAULT_BASE_MODEL_DIR);
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench-dp-sgd'));
  const rng = seededRandomBytes('bench-dp-sgd:data');
  const data = Array.from({ length: population }, () => Int32Array.from({ length: seqLen + 1 }, () => uniformInt(rng, model.config.vocabSize)));
  const common = { learningRate: 1e-3, weightDecay: 0 };
  log(`backend ${backend.name}; warming up`);
  await trainLocal(model, lora, adapter, data, { ...common, steps: 1, batchSize: batch, seed: 'warmup' });

  log(`non-private trainLocal: ${steps} steps x batch ${batch} x seq ${seqLen}`);
  let t0 = performance.now();
  const plain = await trainLocal(model, lora, adapter, data, { ...common, steps, batchSize: batch, seed: 'bench' });
  const plainSeconds = (performance.now() - t0) / 1000;

  log(`DP-SGD trainLocalDpSgd: ${steps} steps, q ${batch}/${population}, C 1, z 1`);
  t0 = performance.now();
  const dp = await trainLocalDpSgd(model, lora, adapter, data, { ...common, steps, samplingRate: batch / population, clipNorm: 1, noiseMultiplier: 1, rng: cryptoRandomBytes });
  const dpSeconds = (performance.now() - t0) / 1000;

  const plainTps = plain.tokens / plainSeconds;
  const dpTps = dp.tokens / dpSeconds;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'dp-sgd',
      backend: backend.name,
      model: DEFAULT_BASE_MODEL_DIR,
      lora: { r: lora.r, targetModules: lora.targetModules },
      seqLen,
      batchSize: batch,
      steps,
      nonPrivate: { tokensPerSecond: plainTps, tokens: plain.tokens, seconds: plainSeconds },
      dpSgd: { tokensPerSecond: dpTps, tokens: dp.tokens, seconds: dpSeconds, meanBatchSize: dp.meanBatchSize, clippedFraction: dp.clippedFraction, samplingRate: batch / population },
      slowdown: plainTps / dpTps,
      perExampleGradients: 'one backward pass per sampled sequence (the model does not expose LoRA layer inputs/output grads for ghost norms yet)',
    })}\n`,
  );
  model.dispose();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
