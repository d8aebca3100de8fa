import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../../libs/model/fixtures', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'fedlora-cli-model-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function fedlora(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, FEDLORA_BACKEND: process.env.FEDLORA_BACKEND ?? 'wasm' } });
}

const TEXT = join(work, 'text.txt');
writeFileSync(TEXT, 'The whale, the whale! Thar she blows. Call me Ishmael; the sea is wide and the ship is small. '.repeat(3));

describe('fedlora model', () => {
  it('info --json describes a model directory and an adapter directory', () => {
    const r = fedlora(['model', 'info', join(FIXTURES, 'llama'), '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ kind: 'model', modelType: 'llama', numHeads: 4, numKvHeads: 2, ropeTheta: 500000, tokenizer: { present: true, type: 'BPE' } });
    const a = JSON.parse(fedlora(['model', 'info', join(FIXTURES, 'gpt2', 'adapter'), '--json']).stdout);
    expect(a).toMatchObject({ kind: 'peft-adapter', r: 4, fanInFanOut: true, targetModules: ['c_attn', 'c_fc'] });
  });

  it('perplexity with --adapter equals perplexity of the merged model, and the backend is printed on stderr', () => {
    const base = fedlora(['model', 'perplexity', '--model', join(FIXTURES, 'gpt2'), '--text', TEXT, '--json']);
    expect(base.status).toBe(0);
    expect(base.stderr).toMatch(/backend: wasm/);
    const b = JSON.parse(base.stdout);
    expect(b.perplexity).toBeCloseTo(Math.exp(b.loss), 6);
    expect(b.tokens).toBeGreaterThan(16); // more than one context window
    const adapted = JSON.parse(fedlora(['model', 'perplexity', '--model', join(FIXTURES, 'gpt2'), '--adapter', join(FIXTURES, 'gpt2', 'adapter'), '--text', TEXT, '--json']).stdout);
    const out = join(work, 'merged');
    const m = fedlora(['model', 'merge', '--model', join(FIXTURES, 'gpt2'), '--adapter', join(FIXTURES, 'gpt2', 'adapter'), '--out', out, '--json']);
    expect(m.status).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ mergedModules: 4, r: 4 });
    const merged = JSON.parse(fedlora(['model', 'perplexity', '--model', out, '--text', TEXT, '--json']).stdout);
    expect(merged.tokens).toBe(b.tokens);
    expect(merged.loss).toBeCloseTo(adapted.loss, 4);
    expect(Math.abs(adapted.loss - b.loss)).toBeGreaterThan(1e-3);
  }, 300_000); // four CLI processes; minutes on a loaded machine

  it('generate --json prints the prompt and its completion', () => {
    const r = fedlora(['model', 'generate', '--model', join(FIXTURES, 'llama'), '--prompt', 'The whale', '--max-new-tokens', '8', '--seed', '3', '--json']);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.prompt).toBe('The whale');
    expect(doc.tokens).toBeGreaterThan(0);
  });

  it('a truncated checkpoint fails with the file named and a non-zero exit', () => {
    const dir = join(work, 'broken');
    cpSync(join(FIXTURES, 'qwen2'), dir, { recursive: true });
    const bytes = readFileSync(join(dir, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 64));
    copyFileSync(TEXT, join(dir, 't.txt'));
    const r = fedlora(['model', 'perplexity', '--model', dir, '--text', join(dir, 't.txt'), '--json']);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/broken\/model\.safetensors: truncated safetensors file/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
