/**
 * `fedlora model perplexity` on the tiny checkpoint of each RoPE decoder family
 * (libs/model/fixtures, written by scripts/torch/make_family_fixtures.py) against the float64
 * reference's loss over the same windows (scripts/torch/families.py windowed_loss), with and
 * without the fixture's PEFT adapter.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '@fedlora/tensor';

const BIN = fileURLToPath(new URL('../../bin/fedlora.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../../../libs/model/fixtures', import.meta.url));

function fedlora(args: string[], backend = process.env.FEDLORA_BACKEND ?? 'wasm') {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, FEDLORA_BACKEND: backend } });
}

/** [mean loss, predicted tokens] of the reference, without and with the adapter. */
function reference(name: string): { base: Float32Array; lora: Float32Array } {
  const t = parseSafetensors(readFileSync(join(FIXTURES, name, 'expected.safetensors'))).tensors;
  return { base: t.get('text_loss')!.data, lora: t.get('text_loss_lora')!.data };
}

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
