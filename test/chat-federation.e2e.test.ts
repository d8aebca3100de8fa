/**
 * Instruction tuning in a federation on today's model layouts: the tiny Llama-3-style and
 * Qwen2.5-style checkpoints of libs/model/fixtures (each with its family's chat template in
 * tokenizer_config.json), two institutions with chat-format data ({messages}), a real coordinator
 * and real clients over gRPC on 127.0.0.1. The loss is on the assistant tokens only; each client
 * reports the global adapter's held-out completion loss with its update and the coordinator
 * combines it per round (federated evaluation).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultLoraConfig, initBackend, loadModel, type TextSegment } from '@fedlora/model';
import { runClient, silentLogger } from '@fedlora/federation';
import { instructSegments, maskedSequences } from '@fedlora/train';
import { GrpcConnection } from '@fedlora/transport-grpc';
import { buildCoordinator } from '@fedlora/coordinator';
import { EvaluatingTrainer, PlanFollowingTrainer } from '@fedlora/client';

const FIXTURES = fileURLToPath(new URL('../libs/model/fixtures', import.meta.url));

/** Short chats: the fixtures' byte-level tokenizers and 16-token context leave room for little more. */
function chats(words: string[]): Array<Record<string, unknown>> {
  return words.map((w) => ({ messages: [{ role: 'user', content: w }, { role: 'assistant', content: w.slice(0, 2) }] }));
}

describe.each(['llama3', 'qwen2.5'])('a 2-client federation instruction-tunes the tiny %s checkpoint on chat data', (name) => {
  it('completes every round with completion-only loss and per-round federated evaluation', async () => {
    await initBackend({ backend: process.env.FEDLORA_BACKEND ?? 'wasm' });
    const model = await loadModel(`${FIXTURES}/${name}`);
    const lora = defaultLoraConfig(model);
    const rounds: Array<{ status: string; evalLoss?: number; clients?: number }> = [];
    const app = await buildCoordinator({
      federationId: `chat-${name}`,
      listen: '127.0.0.1:0',
      model,
      lora,
      rounds: 3,
      minClients: 2,
      roundDeadlineMs: 300_000,
      localSteps: 4,
      learningRate: 3e-2,
      batchSize: 4,
      strategy: { name: 'fedavg' },
      seed: `chat-${name}`,
      planParts: () => ({ training: { seqLen: 16 } }),
      logger: silentLogger,
      onRoundEnd: (s) => {
        rounds.push({ status: s.status, evalLoss: s.evaluation?.loss, clients: s.evaluation?.clients });
      },
    });
    try {
      const data = [chats(['sea', 'ship', 'whale', 'oar', 'mast', 'sail', 'deck', 'hull']), chats(['wave', 'wind', 'salt', 'rope', 'helm', 'keel', 'port', 'bow'])];
      const runs = data.map((records, i) => {
        const examples: TextSegment[][] = records.map((r) => instructSegments(model.tokenizer, r, 'messages'));
        // The same chats held out for federated evaluation (masked, fitted to the context).
        const held = maskedSequences(model.tokenizer, examples, 17).sequences;
        expect(held.length).toBe(records.length); // the prompt is cut, never the answer
        const inner = new PlanFollowingTrainer(model, [], { evalFraction: 0, defaultSeqLen: 16, seed: `c${i}`, log: silentLogger, instruct: examples });
        const trainer = new EvaluatingTrainer(inner, model, { instruct: held }, () => lora);
        const connection = new GrpcConnection({ address: `127.0.0.1:${app.port}` });
        return runClient({ name: `inst-${i + 1}`, connection, trainer, pollMs: 500, logger: silentLogger }).finally(() => connection.close());
      });
      await Promise.all([app.done, ...runs]);
    } finally {
      await app.close();
      model.dispose();
    }
    expect(rounds.map((r) => [r.status, r.clients])).toEqual([
      ['completed', 2],
      ['completed', 2],
      ['completed', 2],
    ]);
    // Round r evaluates the adapter round r started from: the completion loss falls as training proceeds.
    expect(rounds[2]!.evalLoss!).toBeLessThan(rounds[0]!.evalLoss!);
  }, 600_000);
});
