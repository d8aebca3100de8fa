import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@fedlora/model';
import { AdamW } from './adamw.js';

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
});

describe('AdamW', () => {
  it('matches torch.optim.AdamW on a known sequence of gradients', async () => {
    // torch: p = torch.tensor([1.0, -2.0], requires_grad=True); opt = AdamW([p], lr=0.1, weight_decay=0.01)
    // p.grad = [0.5, -1.0]; opt.step(); p.grad = [0.1, 0.2]; opt.step()  (torch 1.13 prints the values below)
    const p = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW(new Map([['p', p]]), { weightDecay: 0.01 });
    opt.apply(new Map([['p', tf.tensor1d([0.5, -1])]]), 0.1);
    expect([...(await p.data())].map((x) => Number(x.toFixed(5)))).toEqual([0.899, -1.898]);
    opt.apply(new Map([['p', tf.tensor1d([0.1, 0.2])]]), 0.1);
    const got = [...(await p.data())];
    // step 2 by hand: m = [0.059, -0.07]; v = [0.0002597, 0.0010389]; mhat = m / 0.19; vhat = v / 0.001999
    const expected = [0.899 * (1 - 0.001), -1.898 * (1 - 0.001)].map((x, i) => {
      const m = [0.9 * 0.05 + 0.1 * 0.1, 0.9 * -0.1 + 0.1 * 0.2][i]!;
      const v = [0.999 * 0.00025 + 0.001 * 0.01, 0.999 * 0.001 + 0.001 * 0.04][i]!;
      return x - (0.1 * (m / (1 - 0.81))) / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8);
    });
    for (let i = 0; i < 2; i++) expect(got[i]!).toBeCloseTo(expected[i]!, 5);
    expect(got[0]!).toBeCloseTo(0.817797, 5);
    expect(got[1]!).toBeCloseTo(-1.844999, 5);
    const st = await opt.state();
    expect(st.step).toBe(2);
    opt.dispose();
    p.dispose();
  });

  it('keeps tf.memory() flat: two moments per parameter, nothing more across steps', () => {
    const p = tf.variable(tf.zeros([4, 8]));
    const q = tf.variable(tf.zeros([3]));
    const grads = new Map<string, tf.Tensor>([['p', tf.ones([4, 8])], ['q', tf.ones([3])]]);
    const before = tf.memory().numTensors;
    const opt = new AdamW(new Map([['p', p], ['q', q]]));
    expect(tf.memory().numTensors).toBe(before + 4);
    for (let i = 0; i < 5; i++) opt.apply(grads, 1e-3, 0.5);
    expect(tf.memory().numTensors).toBe(before + 4);
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([p, q, ...grads.values()]);
  });

  it('scales the gradient by gradScale before the update', async () => {
    const a = tf.variable(tf.tensor1d([1, -2]));
    const b = tf.variable(tf.tensor1d([1, -2]));
    const optA = new AdamW(new Map([['p', a]]), { weightDecay: 0 });
    const optB = new AdamW(new Map([['p', b]]), { weightDecay: 0 });
    for (const g of [[0.5, -1], [0.1, 0.2]]) {
      optA.apply(new Map([['p', tf.tensor1d(g.map((x) => x * 0.25))]]), 0.1);
      optB.apply(new Map([['p', tf.tensor1d(g)]]), 0.1, 0.25);
    }
    expect([...(await b.data())]).toEqual([...(await a.data())]);
    tf.dispose([a, b]);
    optA.dispose();
    optB.dispose();
  });

  it('names the parameter whose gradient is missing', () => {
    const p = tf.variable(tf.zeros([2]));
    const opt = new AdamW(new Map([['lora_A', p]]));
    expect(() => opt.apply(new Map(), 0.1)).toThrow(/no gradient for "lora_A"/);
    opt.dispose();
    p.dispose();
  });
});
