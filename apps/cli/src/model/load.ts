/** Shared steps of the model commands: start the backend (printed on stderr), load model and adapter. */
import type { CausalLM, LoraConfig } from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { CliError, info } from '../output.js';

/** Starts the tfjs backend ladder and prints the chosen rung on stderr; returns its name. */
export async function startBackend(forced?: string): Promise<string> {
  const { initBackend } = await import('@fedlora/model');
  try {
    const { name } = await initBackend(forced ? { backend: forced } : {});
    info(`backend: ${name}`);
    return name;
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** Loads a model directory and optionally a PEFT adapter; load errors become CliErrors. */
export async function loadForCli(dir: string, adapterDir?: string): Promise<{ model: CausalLM; lora?: { config: LoraConfig; adapter: NamedTensors } }> {
  const { loadModel, loadPeftAdapter, currentBackend } = await import('@fedlora/model');
  let model: CausalLM;
  try {
    model = await loadModel(dir);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  // Ops the native kernels do not cover run composed from other kernels: say so, never silently.
  if (currentBackend() === 'native') for (const f of model.nativeFallbacks()) info(`native fallback: ${f}`);
  if (!adapterDir) return { model };
  try {
    return { model, lora: await loadPeftAdapter(adapterDir, model) };
  } catch (err) {
    model.dispose();
    throw new CliError((err as Error).message);
  }
}
