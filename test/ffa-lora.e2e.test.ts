import { describe, expect, it, vi } from 'vitest';
import type { LocalTrainer } from '@fedlora/federation';
import { verifyLedgerFile } from '@fedlora/privacy';
import type { NamedTensors } from '@fedlora/tensor';
import { runSimulation } from '@fedlora/cli';
import type { SimulationOptions } from '@fedlora/cli';

// Three real clients over gRPC in one process: allow for a busy machine.
vi.setConfig({ testTimeout: 240_000 });

const base: SimulationOptions = {
  clients: 3,
  rounds: 2,
  localSteps: 2,
  batchSize: 4,
  learningRate: 1e-2,
  seqLen: 32,
  charsPerClient: 6_000,
  evalSequences: 2,
  evalFraction: 0.1,
  roundDeadlineMs: 120_000,
  strategy: { name: 'fedavg' },
  seed: 'ffa-e2e',
};

const isA = (name: string) => name.includes('lora_A');
const bytes = (t: { data: Float32Array }) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** B [dOut, r] times A [r, dIn], in float64. */
function product(b: NamedTensors, a: NamedTensors, nameB: string): Float64Array {
  const A = a.get(nameB.replace('lora_B', 'lora_A'))!;
  const B = b.get(nameB)!;
  const [r, dIn] = A.shape as [number, number];
  const dOut = B.shape[0]!;
  const out = new Float64Array(dOut * dIn);
  for (let o = 0; o < dOut; o++) for (let k = 0; k < r; k++) for (let d = 0; d < dIn; d++) out[o * dIn + d] += B.data[o * r + k]! * A.data[k * dIn + d]!;
  return out;
}

/** Records each client's trained adapter (global + the update it sent) and example count, per round. */
function recorder() {
  const sent = new Map<number, Array<{ adapter: NamedTensors; weight: number; keys: string[] }>>();
  const wrap = (_name: string, inner: LocalTrainer): LocalTrainer => ({
    numExamples: inner.numExamples,
    accept: inner.accept?.bind(inner),
    async train(plan, global, progress) {
      const r = await inner.train(plan, global, progress);
      const adapter: NamedTensors = new Map([...global].map(([k, g]) => [k, r.delta.has(k) ? { shape: g.shape, data: Float32Array.from(g.data, (v, i) => v + r.delta.get(k)!.data[i]!) } : g]));
      sent.set(plan.round, [...(sent.get(plan.round) ?? []), { adapter, weight: r.numExamples, keys: [...r.delta.keys()] }]);
      return r;
    },
  });
  return { sent, wrap };
}

describe('FFA-LoRA (A frozen, only B trained and sent) in a federation over gRPC', () => {
  it('aggregates exactly: the new adapter B A is the mean of the clients\' B_i A, and A never changes', async () => {
    const rec = recorder();
    const adapters: NamedTensors[] = [];
    const report = await runSimulation({
      ...base,
      loraVariant: 'ffa',
      wrapTrainer: rec.wrap,
      onRoundAdapters: (round, before, after) => {
        if (round === 1) adapters.push(before);
        if (after) adapters.push(after);
      },
    });
    expect(report.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(report.loraVariant).toBe('ffa');
    expect(report.updateParameters).toBeLessThan(report.adapterParameters);
    // A is bit for bit the seeded initialisation in every round's adapter.
    for (const ad of adapters.slice(1)) for (const [k, t] of ad) if (isA(k)) expect(bytes(t).equals(bytes(adapters[0]!.get(k)!))).toBe(true);
    for (const round of [1, 2]) {
      const clients = rec.sent.get(round)!;
      expect(clients).toHaveLength(3);
      for (const c of clients) expect(c.keys.every((k) => k.includes('lora_B'))).toBe(true); // only B travels
      const total = clients.reduce((s, c) => s + c.weight, 0);
      const next = adapters[round]!;
      for (const nameB of [...next.keys()].filter((k) => k.includes('lora_B'))) {
        const aggregated = product(next, next, nameB);
        const mean = new Float64Array(aggregated.length);
        for (const c of clients) product(c.adapter, c.adapter, nameB).forEach((v, i) => (mean[i] += (c.weight / total) * v));
        let maxRef = 0;
        let maxErr = 0;
        mean.forEach((v, i) => {
          maxRef = Math.max(maxRef, Math.abs(v));
          maxErr = Math.max(maxErr, Math.abs(v - aggregated[i]!));
        });
        expect(maxRef).toBeGreaterThan(0);
        expect(maxErr).toBeLessThan(1e-6 * Math.max(1, maxRef));
      }
      // The simulator's own measure agrees: FFA's aggregation error is float rounding.
      expect(report.rounds[round - 1]!.aggregationError!).toBeLessThan(1e-6);
    }
  });

  it('plain LoRA averages A and B separately: the simulator reports its aggregation error', async () => {
    const report = await runSimulation({ ...base, rounds: 1 });
    expect(report.loraVariant).toBe('lora');
    expect(report.updateParameters).toBe(report.adapterParameters);
    expect(report.rounds[0]!.aggregationError!).toBeGreaterThan(1e-4);
  });

  it('composes with SecAgg+ and distributed noise: only B is masked and summed, A stays, the ledgers audit', async () => {
    const adapters: NamedTensors[] = [];
    const report = await runSimulation({
      ...base,
      loraVariant: 'ffa',
      privacy: { mode: 'distributed', clipNorm: 0.1, noiseMultiplier: 1, delta: 1e-5, clientEpsilon: 100 },
      secagg: { dropout: 0, clipNorm: 0.1, stageTimeoutMs: 20_000 },
      onRoundAdapters: (round, before, after) => {
        if (round === 1) adapters.push(before);
        if (after) adapters.push(after);
      },
    });
    expect(report.rounds.map((r) => r.status)).toEqual(['completed', 'completed']);
    for (const r of report.rounds) expect(r.aggregationError).toBeUndefined(); // the simulator cannot see inside the secure sum
    for (const ad of adapters.slice(1)) {
      for (const [k, t] of ad) {
        if (isA(k)) expect(bytes(t).equals(bytes(adapters[0]!.get(k)!))).toBe(true);
      }
    }
    // B moved (the noisy secure average of the B updates was applied).
    const moved = [...adapters[2]!].some(([k, t]) => !isA(k) && t.data.some((v, i) => v !== adapters[0]!.get(k)!.data[i]));
    expect(moved).toBe(true);
    // The secure average equals the plain average of the clipped B updates up to the planned noise.
    for (const r of report.rounds) expect(r.noiseStd!).toBeLessThan(3 * r.plannedNoiseStd!);
    for (const ledger of report.ledgers!) expect(verifyLedgerFile(ledger).valid).toBe(true);
  });
});
