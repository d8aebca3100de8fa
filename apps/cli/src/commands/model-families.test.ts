/**
 * `fedlora model perplexity` and `fedlora model eval` on the tiny checkpoint of each RoPE decoder
 * family (libs/model/fixtures, written by scripts/torch/make_family_fixtures.py) against the
 * float64 reference (scripts/torch/families.py): the loss over the same text windows
 * (windowed_loss) and the completion-only loss of one prompt-completion example, with and without
 * the fixture's PEFT adapter.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors } from '@fedlora/tensor';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../../libs/model/fixtures', import.meta.url));

function fedlora(args: string[], backend = process.env.FEDLORA_BACKEND ?? 'wasm') {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, FEDLORA_BACKEND: backend } });
}

/** [mean loss, scored tokens] of the reference, without and with the adapter (text windows or the eval example). */
function reference(name: string, what: 'text' | 'eval' = 'text'): { base: Float32Array; lora: Float32Array } {
  const t = parseSafetensors(readFileSync(join(FIXTURES, name, 'expected.safetensors'))).tensors;
  return { base: t.get(`${what}_loss`)!.data, lora: t.get(`${what}_loss_lora`)!.data };
}

const work = mkdtempSync(join(tmpdir(), 'fedlora-families-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
// The example make_family_fixtures.py scores: completion " Ahab." + EOS after the prompt "Call me".
const EVAL_DATA = join(work, 'eval.jsonl');
writeFileSync(EVAL_DATA, `${JSON.stringify({ prompt: 'Call me', completion: ' Ahab.' })}\n`);

describe('fedlora model perplexity matches the float64 reference to 1e-3', () => {
  for (const name of ['llama3', 'qwen2.5', 'mistral', 'gemma2', 'phi3']) {
    it(`${name}, without and with its PEFT adapter`, () => {
      const ref = reference(name);
      const dir = join(FIXTURES, name);
      for (const [adapter, [loss, tokens]] of [
        [undefined, ref.base],
        [join(dir, 'adapter'), ref.lora],
      ] as const) {
        const r = fedlora(['model', 'perplexity', '--model', dir, ...(adapter ? ['--adapter', adapter] : []), '--text', join(dir, 'text.txt'), '--json']);
        expect(r.status, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout) as { tokens: number; loss: number; perplexity: number };
        expect(doc.tokens).toBe(tokens);
        expect(Math.abs(doc.loss - loss!)).toBeLessThan(1e-3);
        expect(Math.abs(doc.perplexity / Math.exp(loss!) - 1)).toBeLessThan(1e-3);
      }
      expect(Math.abs(ref.lora[0]! - ref.base[0]!)).toBeGreaterThan(1e-2); // the adapter matters
    }, 300_000); // two CLI processes; minutes on a loaded machine
  }

  for (const name of ['llama3', 'qwen2.5', 'mistral', 'gemma2', 'phi3']) {
    it(`model eval --task loss (completion tokens only) on ${name}, without and with its adapter`, () => {
      const ref = reference(name, 'eval');
      const dir = join(FIXTURES, name);
      for (const [adapter, [loss, tokens]] of [
        [undefined, ref.base],
        [join(dir, 'adapter'), ref.lora],
      ] as const) {
        const r = fedlora(['model', 'eval', '--model', dir, ...(adapter ? ['--adapter', adapter] : []), '--data', EVAL_DATA, '--format', 'prompt-completion', '--json']);
        expect(r.status, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout) as { loss: number; tokens: number; examples: number };
        expect(doc).toMatchObject({ examples: 1, tokens });
        expect(Math.abs(doc.loss - loss!)).toBeLessThan(1e-3);
      }
    }, 300_000);
  }

  it('names the ops that fall back from the native kernels (Gemma 2: soft-capping, sliding window)', () => {
    const probe = fedlora(['model', 'info', join(FIXTURES, 'gemma2'), '--json'], 'native');
    // Without the native addon built there is no native rung to report on.
    if (probe.status !== 0 && /backend "native" is not available/.test(probe.stderr)) return;
    const r = fedlora(['model', 'perplexity', '--model', join(FIXTURES, 'gemma2'), '--text', join(FIXTURES, 'gemma2', 'text.txt'), '--json'], 'native');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/native fallback: attention logit soft-capping/);
    expect(r.stderr).toMatch(/native fallback: sliding-window attention \(window 4\)/);
    expect(Math.abs((JSON.parse(r.stdout) as { loss: number }).loss - reference('gemma2').base[0]!)).toBeLessThan(1e-3);
  }, 300_000);
});
