/**
 * Is the `simulate --task qa` set learnable by the model at all? A centralised (non-federated)
 * fine-tune on the union of every institution's training pairs, with the multiple-choice accuracy
 * on every held-out question before and after. Writes the data and the adapter so that the numbers
 * can be checked with the CLI:
 *
 *   node --import tsx bench/qa-centralised.ts --out /tmp/qa-central --steps 200
 *   fedlora model eval --model models/fedlora-tiny --data /tmp/qa-central/qa-mcq.jsonl --task mcq --json
 *   fedlora model eval --model models/fedlora-tiny --adapter /tmp/qa-central/adapter --data /tmp/qa-central/qa-mcq.jsonl --task mcq --json
 *
 * Prints one JSON document: accuracy before and after, the train loss, steps and seconds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_BASE_MODEL_DIR, defaultLoraConfig, initBackend, initLoraAdapter, loadModel, savePeftAdapter } from '@fedlora/model';
import { seededRandomBytes } from '@fedlora/tensor';
import { evaluateMcq, instructSegments, instructTrainingSequences, trainLocal } from '@fedlora/train';
import { qaLoraTargets, sotuQa } from '@fedlora/cli';

const { values: a } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/qa-central' },
    steps: { type: 'string', default: '200' },
    lr: { type: 'string', default: '5e-3' },
    'batch-size': { type: 'string', default: '16' },
    clients: { type: 'string', default: '4' },
    backend: { type: 'string' },
    model: { type: 'string', default: DEFAULT_BASE_MODEL_DIR },
  },
});
const steps = Number(a.steps);
const backend = await initBackend({ backend: a.backend as never });
const model = await loadModel(a.model!);
const corpora = sotuQa(Number(a.clients));
const train = corpora.flatMap((c) => c.train);
const mcq = corpora.flatMap((c) => c.heldOut);
mkdirSync(a.out!, { recursive: true });
writeFileSync(join(a.out!, 'qa-train.jsonl'), train.map((r) => JSON.stringify(r)).join('\n') + '\n');
writeFileSync(join(a.out!, 'qa-mcq.jsonl'), mcq.map((r) => JSON.stringify(r)).join('\n') + '\n');
const lora = { ...defaultLoraConfig(model), targetModules: qaLoraTargets(model.config.modelType) };
const seqs = instructTrainingSequences(model.tokenizer, train.map((r) => instructSegments(model.tokenizer, r, 'prompt-completion')), model.config.maxPositions).sequences;
const initial = initLoraAdapter(model, lora, seededRandomBytes('qa-central'));
const before = await evaluateMcq(model, mcq, { lora, adapter: initial });
const t0 = performance.now();
const r = await trainLocal(model, lora, initial, seqs, { steps, batchSize: Number(a['batch-size']), learningRate: Number(a.lr), seed: 'qa-central', gradClipNorm: 1 });
const seconds = (performance.now() - t0) / 1000;
const after = await evaluateMcq(model, mcq, { lora, adapter: r.adapter });
await savePeftAdapter(join(a.out!, 'adapter'), model, lora, r.adapter);
process.stdout.write(
  JSON.stringify(
    {
      backend: backend.name,
      trainExamples: seqs.length,
      questions: mcq.length,
      steps,
      trainLoss: r.trainLoss,
      seconds,
      before: { acc: before.acc, accNorm: before.acc_norm },
      after: { acc: after.acc, accNorm: after.acc_norm },
      files: { train: join(a.out!, 'qa-train.jsonl'), mcq: join(a.out!, 'qa-mcq.jsonl'), adapter: join(a.out!, 'adapter') },
    },
    null,
    2,
  ) + '\n',
);
