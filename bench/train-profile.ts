/**
 * Per-kernel profile of the `fedlora bench train` step (the real trainer, one optimizer step) for
 * either bench model on one backend: wall time of the step, time inside kernels, tfjs' peak bytes
 * and the kernels it spends the time in. One JSON document on stdout.
 *
 *   npx tsx bench/train-profile.ts [fedlora-tiny|gpt2-small|<layers>] [backend=native]
 *
 * A number instead of a model name profiles a GPT-2-small-shaped model with that many layers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, loadModel, parseModelConfig, type TextTokenizer } from '@fedlora/model';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { kernelTotals } from './kernel-totals.js';
import { trainLocal } from '@fedlora/train';

/** GPT-2 small's shape, as train-worker.ts (which runs on import, so it is not imported here). */
const GPT2_SMALL = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'fedlora-tiny';
  const { name } = await initBackend({ backend: process.argv[3] ?? 'native' });
  const layers = Number(which);
  const model = Number.isInteger(layers)
    ? new CausalLM(parseModelConfig({ ...GPT2_SMALL, n_layer: layers }), NO_TEXT, initWeights(parseModelConfig({ ...GPT2_SMALL, n_layer: layers }), 1))
    : which === 'gpt2-small'
      ? new CausalLM(parseModelConfig(GPT2_SMALL), NO_TEXT, initWeights(parseModelConfig(GPT2_SMALL), 1))
      : await loadModel(which === 'fedlora-tiny' ? DEFAULT_BASE_MODEL_DIR : which);
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench'));
  const rng = seededRandomBytes('bench-data');
  const data = Array.from({ length: 8 }, () => Int32Array.from({ length: 129 }, () => uniformInt(rng, model.config.vocabSize)));
  const run = async (steps: number): Promise<number> => {
    const t0 = performance.now();
    await trainLocal(model, lora, adapter, data, { steps, batchSize: 4, learningRate: 1e-4, seed: 1, gradClipNorm: 1 });
    return performance.now() - t0;
  };
  await run(2);
  // Steady-state step time: difference of a 6-step and a 1-step run (setup and teardown cancel).
  const stepMs = ((await run(6)) - (await run(1))) / 5;
  const info = await tf.profile(async () => {
    await run(1);
    return [];
  });
  // Matrix products by operand shapes and transpose flags: where the BatchMatMul time goes.
  const matmuls = kernelTotals(info.kernels, (k) => (k.name === 'BatchMatMul' || k.name === '_FusedMatMul' ? `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join('x')}` : undefined), 1).map(
    ({ key, ms, calls }) => ({ shapes: key, ms, calls }),
  );
  const all = kernelTotals(info.kernels, undefined, 1).map(({ key, ms, calls }) => ({ kernel: key, ms, calls }));
  const kernelMs = all.reduce((s, k) => s + k.ms, 0);
  process.stdout.write(
    `${JSON.stringify({ backend: name, model: which, layers: model.config.numLayers, stepMs: Math.round(stepMs), kernelMsPerRun: Math.round(kernelMs), kernelCalls: info.kernels.length, peakBytes: info.peakBytes, topKernels: all.slice(0, Number(process.env["PROFILE_TOP"] ?? 15)), matmuls: matmuls.slice(0, 20) })}\n`,
  );
  model.dispose();
}

await main();
