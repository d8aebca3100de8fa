/**
 * PEFT adapter directories: `adapter_config.json` + `adapter_model.safetensors`, as
 * `PeftModel.save_pretrained` writes them (adapter name stripped from tensor names). GPT-2's
 * Conv1D layers get `fan_in_fan_out: true`, as PEFT requires for them.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NamedTensors } from '@fedlora/tensor';
import { parseSafetensors, serializeSafetensors } from '@fedlora/tensor';
import { CheckpointError, readModelFile } from './checkpoint.js';
import type { CausalLM } from './causal-lm.js';
import { assertAdapterLayout, validateLoraConfig, type LoraConfig } from './lora.js';

/** The adapter_config.json we write (the fields PEFT 0.x reads for LoRA). */
export function peftAdapterConfig(model: Pick<CausalLM, 'config'>, cfg: LoraConfig, baseModel = ''): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: cfg.r,
    lora_alpha: cfg.alpha,
    lora_dropout: cfg.dropout,
    target_modules: cfg.targetModules,
    fan_in_fan_out: model.config.modelType === 'gpt2',
    bias: 'none',
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
    use_dora: false,
    revision: null,
  };
}

/** Writes an adapter in PEFT's layout. */
export async function savePeftAdapter(dir: string, model: CausalLM, cfg: LoraConfig, adapter: NamedTensors, opts: { baseModel?: string } = {}): Promise<void> {
  validateLoraConfig(cfg);
  assertAdapterLayout(model, cfg, adapter);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(peftAdapterConfig(model, cfg, opts.baseModel), null, 2)}\n`);
  await writeFile(join(dir, 'adapter_model.safetensors'), serializeSafetensors(adapter, { metadata: { format: 'pt' } }));
}

/**
 * Reads a PEFT LoRA adapter for `model`. Accepts names with or without the adapter name
 * (`lora_A.default.weight`), and a regex string `target_modules` as PEFT allows.
 */
export async function loadPeftAdapter(dir: string, model: CausalLM): Promise<{ config: LoraConfig; adapter: NamedTensors }> {
  const cfgFile = join(dir, 'adapter_config.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse((await readModelFile(cfgFile, 'a PEFT adapter needs adapter_config.json')).toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw err instanceof CheckpointError ? err : new CheckpointError(`${cfgFile}: invalid JSON (${(err as Error).message})`);
  }
  if (raw.peft_type !== 'LORA') throw new CheckpointError(`${cfgFile}: field "peft_type" must be "LORA", received ${JSON.stringify(raw.peft_type)}`);
  const expectFanIn = model.config.modelType === 'gpt2';
  if (Boolean(raw.fan_in_fan_out) !== expectFanIn) {
    throw new CheckpointError(`${cfgFile}: field "fan_in_fan_out" must be ${expectFanIn} for model_type ${model.config.modelType}, received ${JSON.stringify(raw.fan_in_fan_out)}`);
  }
  if (raw.use_dora === true) throw new CheckpointError(`${cfgFile}: field "use_dora" true is not supported`);
  if (raw.bias !== undefined && raw.bias !== 'none') throw new CheckpointError(`${cfgFile}: field "bias" must be "none", received ${JSON.stringify(raw.bias)}`);
  let targets: string[];
  if (typeof raw.target_modules === 'string') {
    const re = new RegExp(`^(?:${raw.target_modules})$`);
    targets = model.linears.filter((l) => re.test(l.path)).map((l) => l.path);
  } else if (Array.isArray(raw.target_modules)) {
    targets = raw.target_modules.map(String);
  } else {
    throw new CheckpointError(`${cfgFile}: field "target_modules" must be a list or a regex string, received ${JSON.stringify(raw.target_modules)}`);
  }
  const config: LoraConfig = { r: Number(raw.r), alpha: Number(raw.lora_alpha ?? 8), dropout: Number(raw.lora_dropout ?? 0), targetModules: targets };
  try {
    validateLoraConfig(config);
  } catch (err) {
    throw new CheckpointError(`${cfgFile}: ${(err as Error).message}`);
  }
  const file = join(dir, 'adapter_model.safetensors');
  const bytes = await readModelFile(file, 'a PEFT adapter needs adapter_model.safetensors');
  let tensors: NamedTensors;
  try {
    tensors = parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file).tensors;
  } catch (err) {
    throw new CheckpointError((err as Error).message);
  }
  const adapter: NamedTensors = new Map();
  for (const [name, t] of tensors) adapter.set(name.replace(/\.lora_([AB])\.[^.]+\.weight$/, '.lora_$1.weight'), t);
  try {
    assertAdapterLayout(model, config, adapter, file);
  } catch (err) {
    throw new CheckpointError((err as Error).message);
  }
  return { config, adapter };
}

/** Reads adapter_config.json only (e.g. for `fedlora model info`). */
export async function readPeftConfig(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
}
