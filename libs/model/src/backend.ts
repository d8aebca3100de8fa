/**
 * The backend ladder (ARCHITECTURE.md: Decisions, Tensors), kept in this one file so a faster path can slot in:
 * `@tensorflow/tfjs-node-gpu` (CUDA) -> `@tensorflow/tfjs-node` -> cpu + native OpenBLAS kernels
 * (`@fedlora/native-cpu`) -> wasm (SIMD) -> pure-JS cpu. The native packages are optional: they are
 * imported dynamically and never required. `FEDLORA_BACKEND` (or `opts.backend`) forces one rung.
 *
 * To make the GPU rung available on a CUDA host: `npm install @tensorflow/tfjs-node-gpu@4.22.0`
 * in the repository root, then run with `FEDLORA_BACKEND=tfjs-node-gpu` (or let the ladder pick it).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerAllGradients } from './tfjs-gradients.js';
import { patchWasmTransposedMatMul } from './wasm-matmul.js';

/** Names of the rungs, in the order the ladder tries them. */
export const BACKEND_NAMES = ['tfjs-node-gpu', 'tfjs-node', 'native', 'wasm', 'cpu'] as const;
/** One rung of the ladder. */
export type BackendName = (typeof BACKEND_NAMES)[number];

let chosen: { name: BackendName; reasons: Record<string, string> } | undefined;

type Attempt = () => Promise<void>;

// A module specifier held in a variable keeps bundlers and tsc from resolving optional packages.
const dynamicImport = (spec: string): Promise<unknown> => import(/* @vite-ignore */ spec);

const attempts: Record<BackendName, Attempt> = {
  'tfjs-node-gpu': async () => {
    await dynamicImport('@tensorflow/tfjs-node-gpu');
    await activate('tensorflow');
  },
  'tfjs-node': async () => {
    await dynamicImport('@tensorflow/tfjs-node');
    await activate('tensorflow');
  },
  native: async () => {
    const mod = (await dynamicImport('@fedlora/native-cpu')) as {
      loadNativeCpu?: () => { available: boolean; reason?: string; name: string };
      registerNativeKernels?: (t: typeof tf) => string[];
    };
    if (typeof mod.loadNativeCpu !== 'function' || typeof mod.registerNativeKernels !== 'function') {
      throw new Error('@fedlora/native-cpu does not export loadNativeCpu/registerNativeKernels yet');
    }
    const status = mod.loadNativeCpu();
    if (!status.available) throw new Error(status.reason ?? 'native kernels unavailable');
    await import('@tensorflow/tfjs-backend-cpu');
    await activate('cpu');
    mod.registerNativeKernels(tf);
  },
  wasm: async () => {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(`${dist}/`);
    await activate('wasm');
    patchWasmTransposedMatMul();
  },
  cpu: async () => {
    await import('@tensorflow/tfjs-backend-cpu');
    await activate('cpu');
  },
};

async function activate(name: string): Promise<void> {
  registerAllGradients();
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

/**
 * Chooses and initialises the tfjs backend once per process. Returns the chosen rung's name (the
 * caller prints it). A forced backend that cannot start is an error, never a silent fallback.
 */
export async function initBackend(opts: { backend?: string } = {}): Promise<{ name: string; reasons: Record<string, string> }> {
  const forced = opts.backend ?? process.env.FEDLORA_BACKEND;
  if (chosen && (!forced || forced === chosen.name)) return chosen;
  // tfjs prints a banner recommending tfjs-node on the cpu backend's first use; the ladder already
  // chose the best available backend and says which, so the banner only misleads (PROD mutes warnings).
  tf.env().set('PROD', true);
  if (forced !== undefined && forced !== '') {
    if (!(BACKEND_NAMES as readonly string[]).includes(forced)) {
      throw new RangeError(`backend must be one of ${BACKEND_NAMES.join(', ')}, received "${forced}"`);
    }
    try {
      await attempts[forced as BackendName]();
    } catch (err) {
      throw new Error(`backend "${forced}" is not available: ${(err as Error).message}`);
    }
    chosen = { name: forced as BackendName, reasons: {} };
    return chosen;
  }
  const reasons: Record<string, string> = {};
  for (const name of BACKEND_NAMES) {
    try {
      await attempts[name]();
      chosen = { name, reasons };
      return chosen;
    } catch (err) {
      reasons[name] = (err as Error).message.split('\n')[0]!;
    }
  }
  throw new Error(`no tfjs backend could start: ${JSON.stringify(reasons)}`);
}

/** The backend chosen by `initBackend`, or undefined before it ran. */
export function currentBackend(): string | undefined {
  return chosen?.name;
}
