/**
 * Per-kernel profile of one LoRA training step of the model library's GPT-2 (via `trainLocal`) on
 * the native cpu path: shows which kernels the model still spends its time in. One JSON document.
 *
 *   npx tsx bench/native-profile-model.ts [layers=12]
 */
import * as tf from '@tensorflow/tfjs-core';
import { CausalLM, defaultLoraConfig, initBackend, initLoraAdapter, initWeights, parseModelConfig, type TextTokenizer } from '@fedlora/model';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { trainLocal } from '@fedlora/train';
import { kernelTotals } from './kernel-totals.js';

const NO_TEXT: TextTokenizer = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;

async function main(): Promise<void> {
  const layers = Number(process.argv[2] ?? '12');
  const { name } = await initBackend({ backend: 'native' });
  const config = parseModelConfig({ model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: layers, n_head: 12 });
  const model = new CausalLM(config, NO_TEXT, initWeights(config, 1));
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench'));
  const rng = seededRandomBytes('bench-data');
  const data = Array.from({ length: 8 }, () => Int32Array.from({ length: 129 }, () => uniformInt(rng, 50257)));
  const run = async (): Promise<tf.TensorContainer> => {
    await trainLocal(model, lora, adapter, data, { steps: 1, batchSize: 4, learningRate: 1e-4, seed: 1, gradClipNorm: 1 });
    return [];
  };
  await run();
  const t0 = performance.now();
  const info = await tf.profile(run);
  const stepMs = performance.now() - t0;
  const top = kernelTotals(info.kernels)
    .slice(0, 15)
    .map(({ key, ms, calls }) => ({ kernel: key, ms, calls }));
  process.stdout.write(`${JSON.stringify({ backend: name, layers, stepMs: Math.round(stepMs), peakBytes: info.peakBytes, topKernels: top })}\n`);
  model.dispose();
}

await main();
