/**
 * Registers tfjs-core's gradient functions. tfjs-core ships them only in its ESM build
 * (`dist/register_all_gradients.js`), whose extensionless and directory imports
 * (`from './gradients'`) Node's ESM loader and tsx reject; vitest's resolver accepts them. So we
 * bundle that one entry point to CommonJS with esbuild (already present as tsx's and vite's
 * engine), cache the result under node_modules/.cache, and `require` it. Gradient and kernel
 * registries are process-global in tfjs, so the registrations reach the `@tensorflow/tfjs-core`
 * instance everyone else imports.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

let done = false;

/** Makes `tf.grad` & co. work for every op; idempotent. */
export function registerAllGradients(): void {
  if (done || tf.getGradient('Sum') !== undefined) {
    done = true;
    return;
  }
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const coreDir = dirname(dirname(entry));
  const version = (JSON.parse(readFileSync(join(coreDir, 'package.json'), 'utf8')) as { version: string }).version;
  const cacheDir = join(dirname(dirname(coreDir)), '.cache', 'fedlora');
  const cached = join(cacheDir, `tfjs-core-${version}-gradients.cjs`);
  if (!existsSync(cached)) {
    const esbuild = require('esbuild') as {
      buildSync(o: object): { outputFiles: Array<{ text: string }> };
    };
    const out = esbuild.buildSync({ entryPoints: [entry], bundle: true, format: 'cjs', platform: 'node', write: false, logLevel: 'silent' });
    try {
      mkdirSync(cacheDir, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      writeFileSync(tmp, out.outputFiles[0]!.text);
      renameSync(tmp, cached); // atomic: concurrent processes never read a half-written bundle
    } catch {
      // read-only node_modules: use a per-process file instead
      const fallback = join(mkdtempSync(join(tmpdir(), 'fedlora-grads-')), 'gradients.cjs');
      writeFileSync(fallback, out.outputFiles[0]!.text);
      require(fallback);
      return finish();
    }
  }
  require(cached);
  finish();
}

function finish(): void {
  if (tf.getGradient('Sum') === undefined) throw new Error('registering tfjs gradients failed: no gradient for Sum');
  done = true;
}
