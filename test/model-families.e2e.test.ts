/**
 * Federations on today's model layouts: the tiny Llama-3-style (llama3 rope scaling, tied, bf16,
 * sharded) and Qwen2.5-style (q/k/v biases, tied, f16) checkpoints of libs/model/fixtures,
 * fine-tuned with plain text by a real coordinator and real clients over gRPC on 127.0.0.1.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { NamedTensors } from '@fedlora/tensor';
import { cloneNamed } from '@fedlora/tensor';
import { runSimulation } from '@fedlora/cli';

const FIXTURES = fileURLToPath(new URL('../libs/model/fixtures', import.meta.url));

describe.each([
  ['llama3', 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'],
  ['qwen2.5', 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'],
])('a 2-client federation fine-tunes the tiny %s checkpoint', (name, peftKey) => {
  it('completes every round, moves the adapter under PEFT names, and lowers the held-out loss', async () => {
    const adapters: Array<{ before: NamedTensors; after: NamedTensors | null }> = [];
    const report = await runSimulation({
      modelDir: `${FIXTURES}/${name}`,
      clients: 2,
      rounds: 2,
      localSteps: 3,
      batchSize: 4,
      learningRate: 1e-2,
      seqLen: 16, // the fixtures' max_position_embeddings
      charsPerClient: 3000,
      evalSequences: 4,
      evalFraction: 0.1,
      roundDeadlineMs: 300_000,
      strategy: { name: 'fedavg' },
      seed: `e2e-${name}`,
      onRoundAdapters: (_round, before, after) => adapters.push({ before: cloneNamed(before), after: after && cloneNamed(after) }),
    });
    expect(report.rounds.map((r) => [r.round, r.status, r.participants])).toEqual([
      [1, 'completed', 2],
      [2, 'completed', 2],
    ]);
    const { before, after } = adapters.at(-1)!;
    expect(after!.has(peftKey)).toBe(true);
    const b = before.get(peftKey)!.data;
    const a = after!.get(peftKey)!.data;
    expect(a.some((v, i) => v !== b[i])).toBe(true);
    expect(report.rounds.at(-1)!.evalLoss!).toBeLessThan(report.initialEvalLoss);
  }, 600_000);
});
