/**
 * config.json of real Hub checkpoints (fixtures/hub-configs, copied from the model repositories)
 * parse into the right architecture, with parameter counts equal to the ones the model cards
 * state; options this engine does not implement are refused naming the key and the value.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config.js';
import { parameterLayout } from './architecture.js';
import { ropeInverseFrequencies } from './rope.js';

const HUB = fileURLToPath(new URL('../fixtures/hub-configs', import.meta.url));
const hub = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(HUB, `${name}.json`), 'utf8')) as Record<string, unknown>;
const count = (raw: Record<string, unknown>): number => {
  let n = 0;
  for (const s of parameterLayout(parseModelConfig(raw)).tensors.values()) n += s.reduce((a, b) => a * b, 1);
  return n;
};

describe('Hub configs parse, with the published parameter counts', () => {
  it.each([
    ['Llama-3.2-1B', 1_235_814_400],
    ['Qwen2.5-0.5B', 494_032_768],
    ['SmolLM2-135M', 134_515_008],
    ['TinyLlama-1.1B-Chat-v1.0', 1_100_048_384],
    ['Mistral-7B-v0.3', 7_248_023_552],
    ['gemma-2-2b', 2_614_341_888],
    ['Phi-3-mini-4k-instruct', 3_821_079_552],
  ])('%s has %i parameters', (name, params) => {
    expect(count(hub(name))).toBe(params);
  });

  it('Llama 3.2: llama3 rope scaling, explicit head_dim, tied head, first of several EOS ids', () => {
    const c = parseModelConfig({ ...hub('Llama-3.2-1B'), eos_token_id: [128001, 128008, 128009] });
    expect(c).toMatchObject({ modelType: 'llama', headDim: 64, tieWordEmbeddings: true, numKvHeads: 8, eosTokenId: 128001 });
    expect(c.ropeScaling).toEqual({ type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
  });

  it('Qwen2.5: q/k/v biases but none on o_proj; sliding_window ignored while use_sliding_window is false', () => {
    const c = parseModelConfig(hub('Qwen2.5-0.5B'));
    expect(c).toMatchObject({ attentionBias: true, outputBias: false, tieWordEmbeddings: true });
    expect(c.layerWindows.every((w) => w === 0)).toBe(true);
    const lin = parameterLayout(c).linears;
    expect(lin.find((l) => l.path === 'model.layers.0.self_attn.k_proj')?.hasBias).toBe(true);
    expect(lin.find((l) => l.path === 'model.layers.0.self_attn.o_proj')?.hasBias).toBe(false);
  });

  it('Gemma 2: soft-caps, query_pre_attn_scalar, sliding window on even layers, sqrt(hidden) embedding scale', () => {
    const c = parseModelConfig(hub('gemma-2-2b'));
    expect(c).toMatchObject({ modelType: 'gemma2', attnLogitSoftcap: 50, finalLogitSoftcap: 30, hiddenAct: 'gelu_tanh', headDim: 256 });
    expect(c.attentionScale).toBeCloseTo(1 / 16, 12);
    expect(c.layerWindows.slice(0, 4)).toEqual([4096, 0, 4096, 0]);
    expect(c.embeddingScale).toBe(Math.fround(Math.sqrt(2304)));
  });

  it('Phi-3: fused qkv_proj and gate_up_proj are the LoRA targets; sliding window on every layer', () => {
    const c = parseModelConfig(hub('Phi-3-mini-4k-instruct'));
    const names = new Set(parameterLayout(c).linears.map((l) => l.path.split('.').pop()));
    expect([...names].sort()).toEqual(['down_proj', 'gate_up_proj', 'o_proj', 'qkv_proj']);
    expect(c.layerWindows.every((w) => w === 2047)).toBe(true);
  });

  it('Mistral v0.3 (sliding_window null) attends fully; v0.1 (absent key) gets the 4096 default', () => {
    expect(parseModelConfig(hub('Mistral-7B-v0.3')).layerWindows[0]).toBe(0);
    const { sliding_window: _, ...v01 } = hub('Mistral-7B-v0.3');
    expect(parseModelConfig(v01).layerWindows[0]).toBe(4096);
  });
});

describe('unsupported architectures and options are refused with the key and the value', () => {
  it.each([
    [{ ...hub('Phi-3-mini-4k-instruct'), rope_scaling: { type: 'longrope', long_factor: [1], short_factor: [1] } }, /rope_scaling\.rope_type" "longrope" is not supported/],
    [{ ...hub('Llama-3.2-1B'), rope_scaling: { rope_type: 'yarn', factor: 4 } }, /"yarn"/],
    [{ ...hub('Llama-3.2-1B'), rope_scaling: { rope_type: 'llama3', factor: 32 } }, /rope_scaling\.low_freq_factor" must be a positive number, received undefined/],
    [{ ...hub('Qwen2.5-0.5B'), use_sliding_window: true }, /"use_sliding_window" true is not supported for qwen2, received true/],
    [{ ...hub('Llama-3.2-1B'), hidden_act: 'relu' }, /"hidden_act" must be "silu" or "gelu_pytorch_tanh", received "relu"/],
    [{ ...hub('gemma-2-2b'), hidden_activation: 'gelu' }, /"hidden_activation" .* received "gelu"/],
    [{ ...hub('Phi-3-mini-4k-instruct'), partial_rotary_factor: 0.75 }, /"partial_rotary_factor" other than 1 is not supported, received 0.75/],
    [{ ...hub('SmolLM2-135M'), rope_interleaved: true }, /"rope_interleaved" true/],
    [{ ...hub('Llama-3.2-1B'), quantization_config: { quant_method: 'awq' } }, /"quantization_config" .*awq/],
    [{ ...hub('gemma-2-2b'), model_type: 'gemma3_text' }, /unsupported "model_type" "gemma3_text"/],
  ])('refuses %#', (raw, message) => {
    expect(() => parseModelConfig(raw as Record<string, unknown>)).toThrow(message);
  });
});

describe('RoPE inverse frequencies (transformers modeling_rope_utils)', () => {
  it('llama3 divides long wavelengths by factor, keeps short ones, interpolates the band between', () => {
    const scaled = ropeInverseFrequencies(64, 500000, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 }, 16, 131072);
    const plain = ropeInverseFrequencies(64, 500000, { type: 'default' }, 16, 131072);
    expect(scaled[0]).toBe(plain[0]); // wavelength 2 pi < 2048: unchanged
    expect(scaled[31]).toBeCloseTo(plain[31]! / 32, 15); // wavelength > 8192: divided by 32
    const mid = plain.findIndex((f) => (2 * Math.PI) / f > 2048 && (2 * Math.PI) / f < 8192);
    expect(scaled[mid]! < plain[mid]! && scaled[mid]! > plain[mid]! / 32).toBe(true);
  });

  it('dynamic NTK raises the base only past max_position_embeddings', () => {
    const s = { type: 'dynamic', factor: 2 } as const;
    expect(ropeInverseFrequencies(8, 10000, s, 8, 8)).toEqual(ropeInverseFrequencies(8, 10000, { type: 'default' }, 8, 8));
    const base = 10000 * (2 * 16 / 8 - 1) ** (8 / 6);
    expect(ropeInverseFrequencies(8, 10000, s, 16, 8)[1]).toBeCloseTo(1 / base ** (2 / 8), 15);
  });
});
