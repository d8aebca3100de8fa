/**
 * One case of `fedlora bench train`, in its own process (a wasm abort or an out-of-memory kills
 * only this case): LoRA training steps of a GPT-2-shaped model through fedlora's real trainer on
 * one backend. Prints one JSON object on stdout.
 *
 *   node --import tsx bench/train-worker.ts '{"backend":"wasm","model":"gpt2-small","seq":128,"batch":4,"steps":3,"warmup":1}'
 */
import {
  CausalLM,
  DEFAULT_BASE_MODEL_DIR,
  defaultLoraConfig,
  initBackend,
  initLoraAdapter,
  initWeights,
  loadModel,
  parseModelConfig,
  type TextTokenizer,
} from '@fedlora/model';
import { seededRandomBytes, uniformInt } from '@fedlora/tensor';
import { trainLocal } from '@fedlora/train';

/** What a case asks for. */
export interface TrainCase {
  backend: string;
  /** `gpt2-small` (12 x 768, 12 heads, vocab 50257), `gpt2-4l-v512` (4 x 768, vocab 512), `qwen2.5-0.5b[-4l]`, `fedlora-tiny` or a model directory. */
  model: string;
  seq: number;
  batch: number;
  steps: number;
  warmup: number;
}

/** GPT-2 small's shape (Radford et al. 2019, the 124M model). */
export const GPT2_SMALL = { model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };

/** Qwen2.5-0.5B's config.json (Hugging Face Qwen/Qwen2.5-0.5B): 494M parameters, tied, q/k/v biases. */
export const QWEN25_05B = {
  model_type: 'qwen2',
  hidden_size: 896,
  intermediate_size: 4864,
  num_hidden_layers: 24,
  num_attention_heads: 14,
  num_key_value_heads: 2,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

/** Random-weight models by name: GPT-2 small, issue 7's small case (its blocks, 4 layers, vocab 512), Qwen2.5-0.5B (and its first 4 layers). */
const SYNTHETIC: Record<string, Record<string, unknown>> = {
  'gpt2-small': GPT2_SMALL,
  'gpt2-4l-v512': { ...GPT2_SMALL, n_layer: 4, vocab_size: 512 },
  'qwen2.5-0.5b': QWEN25_05B,
  'qwen2.5-0.5b-4l': { ...QWEN25_05B, num_hidden_layers: 4 },
};

// The benchmark feeds token ids directly; a tokenizer is never consulted.
const NO_TEXT: TextTokenizer = {
  encode: () => {
    throw new Error('bench model has no tokenizer');
  },
  decode: () => '',
  vocabSize: 0,
};

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '{}') as TrainCase;
  const { name } = await initBackend({ backend: c.backend });
  const synthetic = SYNTHETIC[c.model];
  const model = synthetic
    ? new CausalLM(parseModelConfig(synthetic), NO_TEXT, initWeights(parseModelConfig(synthetic), 1))
    : await loadModel(c.model === 'fedlora-tiny' ? DEFAULT_BASE_MODEL_DIR : c.model);
  // Ops this model needs that the native kernels do not cover (none for GPT-2, Llama, Qwen2).
  for (const f of model.nativeFallbacks()) process.stderr.write(`  native fallback: ${f}\n`);
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes('bench'));
  const rng = seededRandomBytes('bench-data');
  const data = Array.from({ length: c.batch * (c.steps + c.warmup) }, () =>
    Int32Array.from({ length: c.seq + 1 }, () => uniformInt(rng, model.config.vocabSize)),
  );
  const times: number[] = [];
  const cpuMs: number[] = [];
  let cpuMark = process.cpuUsage();
  await trainLocal(model, lora, adapter, data, {
    steps: c.warmup + c.steps,
    batchSize: c.batch,
    learningRate: 1e-4,
    seed: 1,
    gradClipNorm: 1,
    onStep: (s) => {
      process.stderr.write(`  ${name} step ${s.step}: ${Math.round(s.tokensPerSecond)} tokens/s\n`);
      // CPU time of the whole process since the previous step ended (steadier than wall time on a busy machine)
      const cpu = process.cpuUsage(cpuMark);
      cpuMark = process.cpuUsage();
      if (s.step > c.warmup) {
        times.push((c.batch * c.seq) / s.tokensPerSecond);
        cpuMs.push((cpu.user + cpu.system) / 1000);
      }
    },
  });
  times.sort((a, b) => a - b);
  cpuMs.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)]!;
  process.stdout.write(
    `${JSON.stringify({
      backend: name,
      tokensPerSecond: (c.batch * c.seq) / med,
      medianStepMs: med * 1000,
      medianStepCpuMs: cpuMs[Math.floor(cpuMs.length / 2)],
      layers: model.config.numLayers,
      dModel: model.config.hiddenSize,
      loraTargets: lora.targetModules,
      // getrusage's maxrss (KiB): the process's peak, not the resident set at exit
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    })}\n`,
  );
  model.dispose();
}

await main();
