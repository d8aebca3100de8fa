import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import {
  CausalLM,
  DEFAULT_BASE_MODEL_DIR,
  defaultLoraConfig,
  initBackend,
  initLoraAdapter,
  initWeights,
  loadModel,
  loraRuntime,
  parseModelConfig,
  type LoraConfig,
  type TextTokenizer,
} from '@fedlora/model';
import type { NamedTensors } from '@fedlora/tensor';
import { seededRandomBytes, uniform01, uniformInt } from '@fedlora/tensor';
import { gridSensitivity } from '@fedlora/privacy';
import { ghostClippedLoraGradSum, padBatch, weightedExampleLoss, type ClippedSumMethod, type GhostCompute } from './dp-sgd-ghost.js';
import { perExampleLoraGrads, privateLoraGradient } from './dp-sgd-grads.js';
import { trainLocalDpSgd } from './dp-sgd.js';

const NO_TEXT = { encode: () => [], decode: () => '', vocabSize: 0 } as unknown as TextTokenizer;
const LLAMA = {
  model_type: 'llama',
  vocab_size: 300,
  max_position_embeddings: 32,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
};

interface Fixture {
  model: CausalLM;
  lora: LoraConfig;
  adapter: NamedTensors;
  /** Sequences of unequal length (the longest sets the padded width). */
  data: Int32Array[];
}

const fixtures = new Map<string, Fixture>();

function fixture(model: CausalLM, lengths: number[], seed: string): Fixture {
  const lora = defaultLoraConfig(model);
  const adapter = initLoraAdapter(model, lora, seededRandomBytes(`${seed}-a`));
  const rng = seededRandomBytes(`${seed}-b`);
  // A non-zero B, so that the gradients of A are non-zero too.
  for (const [n, t] of adapter) if (n.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (uniform01(rng) - 0.5) * 0.2;
  const data = lengths.map((len) => Int32Array.from({ length: len }, () => uniformInt(rng, model.config.vocabSize)));
  return { model, lora, adapter, data };
}

beforeAll(async () => {
  await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
  fixtures.set('fedlora-tiny', fixture(await loadModel(DEFAULT_BASE_MODEL_DIR), [33, 33, 20, 33, 9, 33], 'tiny'));
  const llama = parseModelConfig(LLAMA);
  fixtures.set('llama', fixture(new CausalLM(llama, NO_TEXT, initWeights(llama, 3, 0.2)), [13, 7, 13, 10, 2], 'llama'));
});
afterAll(() => fixtures.forEach((f) => f.model.dispose()));

const variables = (a: NamedTensors) => new Map([...a].map(([n, t]) => [n, tf.variable(tf.tensor(t.data, t.shape), true)]));
const disposeAll = (vars: Map<string, tf.Variable>) => vars.forEach((v) => v.dispose());
const flat = (a: NamedTensors): Float64Array => Float64Array.from([...a.values()].flatMap((t) => [...t.data]));
const normSq = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => s + x * x, 0);
const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => Math.sqrt(normSq(Array.from(got, (x, i) => x - want[i]!))) / Math.sqrt(normSq(want));

/** Brute force: one backward pass per sequence, then min(1, C/||g_i||) g_i summed in float64. */
async function bruteForce(f: Fixture, vars: Map<string, tf.Variable>, clip: number): Promise<{ normsSq: number[]; clippedSum: Float64Array }> {
  const { grads } = await perExampleLoraGrads(f.model, f.lora, vars, f.data, f.data.map(() => 0));
  const per = grads.map(flat);
  const clippedSum = new Float64Array(per[0]!.length);
  for (const g of per) {
    const c = Math.min(1, clip / Math.sqrt(normSq(g)));
    g.forEach((x, k) => (clippedSum[k] = clippedSum[k]! + c * x));
  }
  return { normsSq: per.map(normSq), clippedSum };
}

for (const name of ['fedlora-tiny', 'llama']) {
  describe(`ghostClippedLoraGradSum on ${name}`, () => {
    for (const [method, compute] of [['traces', 'device'], ['traces', 'host'], ['reweighted-backward', 'device'], ['reweighted-backward', 'host']] as Array<[ClippedSumMethod, GhostCompute]>) {
      it(`matches brute-force per-example norms and clipped sums, some examples clipped and some not, padded lengths (${method}, ${compute})`, async () => {
        const f = fixtures.get(name)!;
        const vars = variables(f.adapter);
        const probe = await bruteForce(f, vars, 1e9);
        const sorted = [...probe.normsSq].sort((a, b) => a - b);
        const clip = Math.sqrt(sorted[Math.floor(sorted.length / 2)]!) * 0.99; // about half are clipped
        const want = await bruteForce(f, vars, clip);
        const got = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: clip, dropoutSeed: 0, clippedSum: method, compute });
        disposeAll(vars);
        got.normsSq.forEach((n, i) => expect(Math.abs(n / want.normsSq[i]! - 1)).toBeLessThan(1e-4));
        const clipped = Array.from(got.factors).filter((c) => c < 1).length;
        expect(clipped).toBeGreaterThan(0);
        expect(clipped).toBeLessThan(f.data.length);
        expect(relErr(flat(got.clippedSum), want.clippedSum)).toBeLessThan(1e-4);
      });
    }
  });
}

/** Brute force per unit: per-sequence gradients summed per unit in float64, clipped, summed. */
async function bruteForceUnits(f: Fixture, vars: Map<string, tf.Variable>, unitOf: number[], clip: number): Promise<{ normsSq: number[]; clippedSum: Float64Array }> {
  const { grads } = await perExampleLoraGrads(f.model, f.lora, vars, f.data, f.data.map(() => 0));
  const per = grads.map(flat);
  const units = Array.from({ length: Math.max(...unitOf) + 1 }, () => new Float64Array(per[0]!.length));
  per.forEach((g, i) => g.forEach((x, k) => (units[unitOf[i]!]![k] += x)));
  const clippedSum = new Float64Array(per[0]!.length);
  for (const g of units) {
    const c = Math.min(1, clip / Math.sqrt(normSq(g)));
    g.forEach((x, k) => (clippedSum[k] = clippedSum[k]! + c * x));
  }
  return { normsSq: units.map(normSq), clippedSum };
}

describe('ghostClippedLoraGradSum with privacy units (unitOf)', () => {
  // Six sequences of unequal length in four units: units 0 and 2 span two sequences each, units 1 and 3 one each.
  const units = [0, 2, 0, 1, 2, 3];
  for (const [method, compute] of [['traces', 'device'], ['traces', 'host'], ['reweighted-backward', 'device']] as Array<[ClippedSumMethod, GhostCompute]>) {
    it(`clips each unit's summed gradient as one, matching the per-example reference summed per unit (${method}, ${compute})`, async () => {
      const f = fixtures.get('fedlora-tiny')!;
      const vars = variables(f.adapter);
      const probe = await bruteForceUnits(f, vars, units, 1e9);
      const sorted = [...probe.normsSq].sort((a, b) => a - b);
      const clip = Math.sqrt(sorted[1]!) * 1.01; // two units below the clip, two above
      const want = await bruteForceUnits(f, vars, units, clip);
      const got = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: clip, dropoutSeed: 0, clippedSum: method, compute, unitOf: Int32Array.from(units) });
      disposeAll(vars);
      expect(got.normsSq.length).toBe(4);
      got.normsSq.forEach((n, u) => expect(Math.abs(n / want.normsSq[u]! - 1)).toBeLessThan(1e-4));
      expect(Array.from(got.factors).filter((c) => c < 1).length).toBe(2);
      expect(relErr(flat(got.clippedSum), want.clippedSum)).toBeLessThan(1e-4);
    });
  }

  it('a unit of several sequences moves the grid sum by at most the accounted sensitivity, and the other units keep their factors', async () => {
    const f = fixtures.get('fedlora-tiny')!;
    const vars = variables(f.adapter);
    const clipNorm = 0.02;
    const gridStep = clipNorm * 2 ** -16;
    const o = { clipNorm, dropoutSeed: 0, gridStep };
    // Unit 0 = sequences 0, 2, 5; the rest are single-sequence units.
    const withUnit = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { ...o, unitOf: Int32Array.of(0, 1, 0, 2, 3, 0) });
    const without = await ghostClippedLoraGradSum(f.model, f.lora, vars, [f.data[1]!, f.data[3]!, f.data[4]!], { ...o, unitOf: Int32Array.of(0, 1, 2) });
    disposeAll(vars);
    const d = withUnit.gridCounts!.reduce((n, c) => n + c.length, 0);
    const k = withUnit.gridCounts!.flatMap((c, t) => Array.from(c, (x, q) => x - without.gridCounts![t]![q]!));
    expect(withUnit.factors[0]).toBeLessThan(1); // the unit is clipped
    expect(Math.sqrt(normSq(k)) * gridStep).toBeLessThanOrEqual(clipNorm + (Math.sqrt(d) * gridStep) / 2);
    expect(Array.from(withUnit.factors.subarray(1))).toEqual(Array.from(without.factors));
  });

  it('with padTo, an example\'s float32 gradient does not depend on a longer batch-mate (the padded width is fixed)', async () => {
    const f = fixtures.get('fedlora-tiny')!;
    const vars = variables(f.adapter);
    const o = { clipNorm: 1e9, dropoutSeed: 0, padTo: 32 };
    const short = await ghostClippedLoraGradSum(f.model, f.lora, vars, [f.data[2]!, f.data[4]!], o); // 19 and 8 targets
    const withLong = await ghostClippedLoraGradSum(f.model, f.lora, vars, [f.data[2]!, f.data[4]!, f.data[0]!], o); // + 32 targets
    disposeAll(vars);
    expect(Array.from(withLong.normsSq.subarray(0, 2))).toEqual(Array.from(short.normsSq));
    expect(() => padBatch([f.data[0]!], 31)).toThrow(/padTo must be an integer >= the longest sequence's 32 targets, received 31/);
  });

  it('rejects unit indices that are not one dense index per sequence', async () => {
    const f = fixtures.get('llama')!;
    const vars = variables(f.adapter);
    const run = (unitOf: number[]) => ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: 1, dropoutSeed: 0, unitOf });
    await expect(run([0, 1])).rejects.toThrow(/unitOf must hold one unit index per sequence \(5\), received 2/);
    await expect(run([0, 1, 1, 3, 3])).rejects.toThrow(/unit 2 has no sequence in the batch/);
    await expect(run([0, 1, -1, 2, 2])).rejects.toThrow(/unitOf\[2\] must be an integer/);
    disposeAll(vars);
  });
});

describe('ghostClippedLoraGradSum', () => {
  it.each(['device', 'host'] as GhostCompute[])('ignores padding: a sequence padded inside a batch has the gradient it has alone (%s)', async (compute) => {
    const f = fixtures.get('fedlora-tiny')!;
    const vars = variables(f.adapter);
    const short = f.data[4]!; // 9 tokens among sequences of 33
    const alone = await ghostClippedLoraGradSum(f.model, f.lora, vars, [short], { clipNorm: 1e9, dropoutSeed: 0, compute });
    const batched = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: 1e9, dropoutSeed: 0, compute });
    const others = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data.filter((s) => s !== short), { clipNorm: 1e9, dropoutSeed: 0, compute });
    disposeAll(vars);
    expect(Math.abs(batched.normsSq[4]! / alone.normsSq[0]! - 1)).toBeLessThan(1e-4);
    const rest = flat(others.clippedSum);
    const diff = flat(batched.clippedSum).map((x, k) => x - rest[k]!);
    expect(relErr(diff, flat(alone.clippedSum))).toBeLessThan(1e-3);
  });

  it.each(['device', 'host'] as GhostCompute[])('uses the dropout-masked inputs: norms equal those of each example alone in the same masked pass (%s)', async (compute) => {
    const f = fixtures.get('llama')!;
    const lora = { ...f.lora, dropout: 0.4 };
    const vars = variables(f.adapter);
    const names = [...vars.keys()];
    const batch = padBatch(f.data);
    const seed = 1234;
    const got = await ghostClippedLoraGradSum(f.model, lora, vars, f.data, { clipNorm: 1e9, dropoutSeed: seed, compute });
    // Reference: example i's gradient alone, from the same padded batch and masks (loss weight e_i).
    const want = f.data.map((_, i) => {
      const w = f.data.map((__, j) => (j === i ? 1 : 0));
      const g = tf.grads((...xs: tf.Tensor[]) => {
        const rt = loraRuntime(f.model, lora, new Map(names.map((n, k) => [n, xs[k]!])));
        return weightedExampleLoss(f.model.forward(batch.inputs, { lora: rt, training: true, seed }), batch.targets, batch.lengths, batch.seqLen, w);
      })(names.map((n) => vars.get(n)!));
      const sq = g.reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0]!, 0);
      tf.dispose(g);
      return sq;
    });
    const noDropout = await ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: 1e9, dropoutSeed: seed, compute });
    tf.dispose([batch.inputs, batch.targets]);
    disposeAll(vars);
    got.normsSq.forEach((n, i) => expect(Math.abs(n / want[i]! - 1)).toBeLessThan(1e-4));
    expect(Math.abs(noDropout.normsSq[0]! / got.normsSq[0]! - 1)).toBeGreaterThan(1e-3); // the masks matter
  });

  it('returns zeros for an empty batch and rejects an unknown clipped-sum method', async () => {
    const f = fixtures.get('llama')!;
    const vars = variables(f.adapter);
    const empty = await ghostClippedLoraGradSum(f.model, f.lora, vars, [], { clipNorm: 1, dropoutSeed: 0 });
    await expect(ghostClippedLoraGradSum(f.model, f.lora, vars, f.data, { clipNorm: 1, dropoutSeed: 0, clippedSum: 'x' as ClippedSumMethod })).rejects.toThrow(/clippedSum must be "traces" or "reweighted-backward", received "x"/);
    disposeAll(vars);
    expect(normSq(flat(empty.clippedSum))).toBe(0);
    expect([...empty.clippedSum.keys()]).toEqual([...f.adapter.keys()]);
  });

  it('weighs the targets of a padded batch 1 / length (0 on padding): one fused loss equal to the sum of per-example means', () => {
    const seqs = [Int32Array.of(1, 2, 3, 4), Int32Array.of(5, 6), Int32Array.of(7, 8, 9)];
    const batch = padBatch(seqs);
    expect(Array.from(batch.tokenWeights!)).toEqual([1 / 3, 1 / 3, 1 / 3, 1, 0, 0, 1 / 2, 1 / 2, 0].map((v) => Math.fround(v)));
    expect(padBatch([Int32Array.of(1, 2), Int32Array.of(3, 4)]).tokenWeights).toBeUndefined();
    const logits = tf.tensor2d(Float32Array.from({ length: 9 * 11 }, (_, k) => Math.sin(k)), [9, 11]);
    const fused = weightedExampleLoss(logits, batch.targets, batch.lengths, batch.seqLen, undefined, batch.tokenWeights);
    const perExample = weightedExampleLoss(logits, batch.targets, batch.lengths, batch.seqLen);
    expect(fused.dataSync()[0]!).toBeCloseTo(perExample.dataSync()[0]!, 5);
    tf.dispose([logits, fused, perExample, batch.inputs, batch.targets]);
  });

  it('rejects a sequence without a target', () => {
    expect(() => padBatch([Int32Array.of(1, 2), Int32Array.of(3)])).toThrow(/sequence 1 holds 1/);
  });
});

describe('ghost clipping sensitivity in floating point (issue 4)', () => {
  it('an example scaled to sit at, just below or just above C never moves the grid sum by more than the accounted C + sqrt(d) h (float64, against the per-example reference)', async () => {
    const f = fixtures.get('fedlora-tiny')!;
    // Large entries: LoRA B scaled up 1000-fold, so the gradients are large and their float32 rounding large in absolute terms.
    const vars = new Map([...f.adapter].map(([n, t]) => [n, tf.variable(tf.tensor(n.includes('lora_B') ? t.data.map((x) => x * 1000) : t.data, t.shape), true)]));
    const [target, ...others] = f.data;
    const { grads } = await perExampleLoraGrads(f.model, f.lora, vars, [target!], [0]);
    const ref = flat(grads[0]!);
    const d = ref.length;
    const refNorm = Math.sqrt(normSq(ref));
    const float64Norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
    for (const clipNorm of [refNorm, refNorm * (1 - 1e-7), refNorm * (1 + 1e-7), refNorm * (1 - 1e-4), refNorm / 4]) {
      const gridStep = clipNorm * 2 ** -16; // z = 1
      const o = { clipNorm, dropoutSeed: 0, gridStep };
      const withTarget = await ghostClippedLoraGradSum(f.model, f.lora, vars, [target!, ...others], o);
      const without = await ghostClippedLoraGradSum(f.model, f.lora, vars, others, o);
      // What the target adds to the sum the noise is added to: exact integers on the grid.
      const k = withTarget.gridCounts!.flatMap((c, t) => Array.from(c, (x, q) => x - without.gridCounts![t]![q]!));
      expect(k.every(Number.isInteger)).toBe(true);
      const moved = float64Norm(k) * gridStep;
      expect(moved).toBeLessThanOrEqual(clipNorm + (Math.sqrt(d) * gridStep) / 2);
      expect(moved).toBeLessThanOrEqual(gridSensitivity(clipNorm, d, gridStep));
      // The ghost path's clip factor applied to the reference gradient (one backward pass for this example alone).
      expect(float64Norm(ref.map((x) => x * withTarget.factors[0]!))).toBeLessThanOrEqual(gridSensitivity(clipNorm, d, gridStep));
      expect(without.factors).toEqual(withTarget.factors.subarray(1)); // each example's clip factor depends on that example alone
    }
    disposeAll(vars);
  }, 120_000);
});

describe('privateLoraGradient noise', () => {
  it('adds the same grid Gaussian with the ghost method as with per-example gradients (same random bytes)', async () => {
    const f = fixtures.get('fedlora-tiny')!;
    const vars = variables(f.adapter);
    const o = { clipNorm: 0.05, noiseMultiplier: 1.3, expectedBatchSize: 5, dropoutSeed: 0 };
    const ghost = await privateLoraGradient(f.model, f.lora, vars, f.data, { ...o, rng: seededRandomBytes('same-noise'), method: 'ghost' });
    const brute = await privateLoraGradient(f.model, f.lora, vars, f.data, { ...o, rng: seededRandomBytes('same-noise'), method: 'per-example' });
    disposeAll(vars);
    expect(ghost.clippedFraction).toBe(brute.clippedFraction);
    const std = (o.noiseMultiplier * o.clipNorm) / o.expectedBatchSize;
    const a = flat(ghost.gradient);
    const b = flat(brute.gradient);
    expect(Math.sqrt(normSq(b) / b.length)).toBeGreaterThan(0.9 * std); // noise dominates
    expect(a.reduce((m, x, k) => Math.max(m, Math.abs(x - b[k]!)), 0)).toBeLessThan(1e-4 * std);
  });
});

describe('trainLocalDpSgd with ghost clipping', () => {
  it('takes the same steps as with per-example gradients (same random bytes)', async () => {
    const f = fixtures.get('llama')!;
    const o = { steps: 3, samplingRate: 0.6, clipNorm: 0.05, noiseMultiplier: 0.5, learningRate: 1e-2 };
    const ghost = await trainLocalDpSgd(f.model, f.lora, f.adapter, f.data, { ...o, rng: seededRandomBytes('steps') });
    const brute = await trainLocalDpSgd(f.model, f.lora, f.adapter, f.data, { ...o, rng: seededRandomBytes('steps'), perExampleGradients: 'per-example' });
    expect(ghost.tokens).toBe(brute.tokens);
    expect(ghost.clippedFraction).toBe(brute.clippedFraction);
    expect(ghost.trainLoss).toBeCloseTo(brute.trainLoss, 4);
    expect(relErr(flat(ghost.adapter), flat(brute.adapter))).toBeLessThan(1e-4);
  });

  it('does not leak tensors across steps with any clipped-sum method and compute place', async () => {
    const f = fixtures.get('llama')!;
    for (const [clippedSum, ghostCompute] of [['traces', 'device'], ['traces', 'host'], ['reweighted-backward', 'device']] as Array<[ClippedSumMethod, GhostCompute]>) {
      const leaked = async (steps: number) => {
        const n = tf.memory().numTensors;
        await trainLocalDpSgd(f.model, f.lora, f.adapter, f.data, { steps, samplingRate: 0.5, clipNorm: 1, noiseMultiplier: 1, learningRate: 1e-3, rng: seededRandomBytes(steps), clippedSum, ghostCompute });
        return tf.memory().numTensors - n;
      };
      const one = await leaked(1);
      expect(await leaked(5)).toBe(one);
    }
  });
});
