import { afterAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

describe('with the native path disabled (as on a machine without the addon)', () => {
  afterAll(() => {
    delete process.env['FEDLORA_NATIVE'];
  });

  it('reports why, registers nothing, and the pure kernels keep computing', async () => {
    process.env['FEDLORA_NATIVE'] = '0';
    vi.resetModules();
    const { loadNativeCpu, registerNativeKernels } = await import('./index.js');
    const status = loadNativeCpu();
    expect(status).toEqual({ available: false, name: 'cpu', reason: 'native kernels disabled by FEDLORA_NATIVE=0' });
    const matMul = tf.getKernel('BatchMatMul', 'cpu')!.kernelFunc;
    expect(registerNativeKernels(tf)).toEqual([]);
    expect(tf.getKernel('BatchMatMul', 'cpu')!.kernelFunc).toBe(matMul);
    await tf.setBackend('cpu');
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(Array.from(y.dataSync())).toEqual([11]);
  });
});
