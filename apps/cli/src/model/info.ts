/** `fedlora model info`: a summary of a model or PEFT adapter directory, without loading weights. */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parameterLayout, readModelConfig, readPeftConfig, loadTokenizer } from '@fedlora/model';
import { CliError } from '../output.js';

/** Reads config.json (or adapter_config.json) and the tokenizer; reports sizes. */
export async function modelInfo(dir: string): Promise<Record<string, unknown>> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (err) {
    throw new CliError(`${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing directory' : (err as Error).message}`);
  }
  const bytes = async (names: string[]): Promise<number> => {
    let n = 0;
    for (const f of names) n += (await stat(join(dir, f))).size;
    return n;
  };
  if (files.includes('adapter_config.json')) {
    const c = await readPeftConfig(dir);
    return {
      kind: 'peft-adapter',
      dir,
      peftType: c.peft_type,
      r: c.r,
      alpha: c.lora_alpha,
      dropout: c.lora_dropout,
      targetModules: c.target_modules,
      fanInFanOut: c.fan_in_fan_out,
      baseModel: c.base_model_name_or_path,
      bytes: await bytes(files.filter((f) => f.startsWith('adapter_'))),
    };
  }
  let config;
  try {
    config = await readModelConfig(dir);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const layout = parameterLayout(config);
  let parameters = 0;
  for (const shape of layout.tensors.values()) parameters += shape.reduce((a, b) => a * b, 1);
  let tokenizer: Record<string, unknown> = { present: false };
  if (files.includes('tokenizer.json')) {
    const t = await loadTokenizer(dir);
    const raw = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as { model?: { type?: string } };
    tokenizer = { present: true, type: raw.model?.type ?? 'unknown', vocabSize: t.vocabSize, eosTokenId: t.eosTokenId };
  }
  const { raw: _raw, ...cfg } = config;
  return {
    kind: 'model',
    dir,
    ...cfg,
    parameters,
    linearModules: [...new Set(layout.linears.map((l) => l.path.replace(/^.*\.\d+\./, '')))],
    weightFiles: files.filter((f) => f.endsWith('.safetensors') || f === 'model.safetensors.index.json'),
    bytes: await bytes(files.filter((f) => f.endsWith('.safetensors'))),
    tokenizer,
  };
}
