/**
 * `fedlora model eval` against an independent computation: the float64 PyTorch reference
 * (scripts/torch/completion_loss.py) scores the completion tokens of examples whose prompt and
 * completion texts are written out by hand here (chat template and Alpaca template included), so
 * the masking, the templates and the mean are all checked; MCQ accuracy is recomputed by hand
 * from the reference's per-choice log-likelihoods.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, type CausalLM } from '@fedlora/model';
import { runModelEval } from './eval.js';

const TINY = fileURLToPath(new URL('../../../../models/fedlora-tiny', import.meta.url));
const GPT2 = fileURLToPath(new URL('../../../../libs/model/fixtures/gpt2', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../../../scripts/torch/completion_loss.py', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { timeout: 60_000 }).status === 0;
const work = mkdtempSync(join(tmpdir(), 'fedlora-eval-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let tiny: CausalLM;
beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  tiny = await loadModel(TINY);
}, 300_000);
afterAll(() => tiny?.dispose());

function jsonl(name: string, records: unknown[]): string {
  const f = join(work, name);
  writeFileSync(f, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return f;
}

/** The reference's loss over [prompt | completion] token ids (completion scored). */
function torchLoss(modelDir: string, adapterDir: string | undefined, examples: Array<{ prompt: number[]; completion: number[] }>): { loss: number; tokens: number; logprobs: number[] } {
  const f = join(work, `ref-${++refFiles}.json`);
  writeFileSync(f, JSON.stringify(examples));
  return JSON.parse(execFileSync(PYTHON, [SCRIPT, modelDir, adapterDir ?? '-', f], { encoding: 'utf8', timeout: 120_000 }));
}

const EOS = '<|endoftext|>';
let refFiles = 0;

describe.skipIf(!hasTorch)('fedlora model eval --task loss matches the float64 PyTorch reference to 1e-3', () => {
  it('prompt-completion, chat messages (bundled template) and Alpaca, prompt tokens masked out', async () => {
    const enc = (s: string): number[] => tiny.tokenizer.encode(s);
    const cases: Array<{ format: string; record: unknown; prompt: string; completion: string }> = [
      { format: 'prompt-completion', record: { prompt: 'Call me', completion: ' Ishmael.' }, prompt: 'Call me', completion: ` Ishmael.${EOS}` },
      {
        format: 'messages',
        record: { messages: [{ role: 'user', content: 'Who is the captain?' }, { role: 'assistant', content: 'Ahab.' }] },
        prompt: 'User: Who is the captain?\nAssistant:',
        completion: ` Ahab.${EOS}\n`,
      },
      {
        format: 'alpaca',
        record: { instruction: 'Name the ship.', input: '', output: 'The Pequod.' },
        prompt: 'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName the ship.\n\n### Response:\n',
        completion: `The Pequod.${EOS}`,
      },
    ];
    for (const c of cases) {
      const file = jsonl(`${c.format}.jsonl`, [c.record, c.record]);
      const r = await runModelEval(tiny, undefined, { data: file, task: 'loss', format: 'auto', batchSize: 8, maxNewTokens: 8 });
      const ref = torchLoss(TINY, undefined, [{ prompt: enc(c.prompt), completion: enc(c.completion) }]);
      expect(r).toMatchObject({ format: c.format, examples: 2, tokens: 2 * ref.tokens, truncated: 0, skipped: 0 });
      expect(Math.abs((r.loss as number) - ref.loss)).toBeLessThan(1e-3);
    }
  }, 600_000);

  it('with a PEFT adapter, and a prompt cut from the left to fit a 16-token context (CLI, --json)', async () => {
    const m = await loadModel(GPT2);
    const ids = (s: string): number[] => m.tokenizer.encode(s);
    const eos = m.tokenizer.eosTokenId!;
    const long = 'the sea the ship the whale the sea the ship the whale the sea';
    m.dispose();
    const file = jsonl('gpt2.jsonl', [
      { prompt: 'the whale', completion: ' the sea' },
      { prompt: long, completion: ' the ship' },
      { prompt: 'x', completion: long + long }, // the completion alone does not fit: skipped, counted
    ]);
    const out = spawnSync(process.execPath, [BIN, 'model', 'eval', '--model', GPT2, '--adapter', join(GPT2, 'adapter'), '--data', file, '--json'], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, FEDLORA_BACKEND: process.env.FEDLORA_BACKEND ?? 'wasm' },
    });
    expect(out.status, out.stderr).toBe(0);
    const r = JSON.parse(out.stdout);
    const keep = 17 - (ids(' the ship').length + 1); // context 16 + 1 tokens in a window
    const ref = torchLoss(GPT2, join(GPT2, 'adapter'), [
      { prompt: ids('the whale'), completion: [...ids(' the sea'), eos] },
      { prompt: ids(long).slice(-keep), completion: [...ids(' the ship'), eos] },
    ]);
    expect(r).toMatchObject({ task: 'loss', examples: 2, truncated: 1, skipped: 1, tokens: ref.tokens });
    expect(Math.abs(r.loss - ref.loss)).toBeLessThan(1e-3);
    const base = torchLoss(GPT2, undefined, [{ prompt: ids('the whale'), completion: [...ids(' the sea'), eos] }]);
    expect(Math.abs(base.loss - ref.loss)).toBeGreaterThan(1e-3); // the adapter matters
  }, 600_000);
});

describe.skipIf(!hasTorch)('fedlora model eval --task mcq reproduces accuracy computed by hand', () => {
  it('acc and acc_norm from the reference log-likelihoods of each choice', async () => {
    const items = [
      { question: 'What is the name of the whale?', choices: ['Moby Dick', 'the Pequod', 'a big fish'], answer: 0 },
      { question: 'Who is the captain of the ship?', choices: ['Ishmael', 'Ahab'], answer: 1 },
      { question: 'What does the ship hunt?', choices: ['whales', 'the wind at sea'], answer: 'whales' },
      { question: 'Where does the story take place?', choices: ['at sea', 'in a desert far away', 'on the moon'], answer: 0 },
    ];
    const r = await runModelEval(tiny, undefined, { data: jsonl('mcq.jsonl', items), task: 'mcq', format: 'auto', batchSize: 8, maxNewTokens: 8 });
    let acc = 0;
    let accNorm = 0;
    for (const it of items) {
      const ctx = `Question: ${it.question}\nAnswer:`;
      const c = tiny.tokenizer.encode(ctx);
      const ref = torchLoss(TINY, undefined, it.choices.map((ch) => ({ prompt: c, completion: tiny.tokenizer.encode(`${ctx} ${ch}`).slice(c.length) })));
      const answer = typeof it.answer === 'number' ? it.answer : it.choices.indexOf(it.answer);
      const best = (v: number[]): number => v.indexOf(Math.max(...v));
      if (best(ref.logprobs) === answer) acc++;
      if (best(ref.logprobs.map((l, i) => l / it.choices[i]!.length)) === answer) accNorm++;
    }
    expect(r).toMatchObject({ task: 'mcq', examples: 4, skipped: 0, acc: acc / 4, acc_norm: accNorm / 4 });
  }, 600_000);
});

describe('fedlora model eval: bad input', () => {
  it('names the record and the field that is wrong', async () => {
    const file = jsonl('bad.jsonl', [{ question: 'q?', choices: ['a', 'b'], answer: 2 }]);
    await expect(runModelEval(tiny, undefined, { data: file, task: 'mcq', format: 'auto', batchSize: 8, maxNewTokens: 8 })).rejects.toThrow(/record 1: field "answer" must be a choice index in \[0, 1\]/);
    const pc = jsonl('bad-pc.jsonl', [{ prompt: 'q', answer: 'a' }]);
    await expect(runModelEval(tiny, undefined, { data: pc, task: 'loss', format: 'auto', batchSize: 8, maxNewTokens: 8 })).rejects.toThrow(/pass --format/);
  }, 300_000);

  it('exact match scores a greedy generation against the answer', async () => {
    const r = await runModelEval(tiny, undefined, { data: jsonl('em.jsonl', [{ prompt: 'Call me', answer: 'zzz-not-a-continuation' }]), task: 'exact-match', format: 'auto', batchSize: 8, maxNewTokens: 4 });
    expect(r).toMatchObject({ task: 'exact-match', examples: 1, exact_match: 0 });
    const pred = (r.predictions as Array<{ prediction: string }>)[0]!.prediction;
    const again = await runModelEval(tiny, undefined, { data: jsonl('em2.jsonl', [{ prompt: 'Call me', answer: ` ${pred} ` }]), task: 'exact-match', format: 'auto', batchSize: 8, maxNewTokens: 4 });
    expect(again.exact_match).toBe(1);
  }, 300_000);
});
