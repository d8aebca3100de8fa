import { describe, expect, it } from 'vitest';
import { runClient, type LocalTrainer } from './client-runner.js';
import { inProcessConnection } from './in-process-connection.js';
import { combineEvaluations } from './round-evaluation.js';
import { constantTrainer, testCoordinator } from './test-helpers.js';

describe('combineEvaluations', () => {
  it('weights accuracy by question count and loss by token count: the metric over the union of the held-out sets', () => {
    const e = combineEvaluations([
      { evalCount: 10, evalAcc: 0.5, evalAccNorm: 0.4, evalLoss: 2, evalTokens: 100, generalLoss: 3 },
      { evalCount: 30, evalAcc: 0.9, evalAccNorm: 0.8, evalLoss: 1, evalTokens: 300, generalLoss: 4 },
      { tokens: 5, steps: 1 }, // trained but did not evaluate: not counted
      undefined,
    ]);
    expect(e).toEqual({ clients: 2, count: 40, acc: (5 + 27) / 40, accNorm: (4 + 24) / 40, loss: (200 + 300) / 400, generalLoss: 3.5 });
  });

  it('is absent when nobody evaluated, and ignores out-of-range accuracies', () => {
    expect(combineEvaluations([{ tokens: 3 }, undefined])).toBeUndefined();
    expect(combineEvaluations([{ evalCount: 4, evalAcc: 7 }])).toEqual({ clients: 1, count: 4 });
  });
});

describe('per-round federated evaluation through the coordinator', () => {
  it("the round summary carries the institutions' combined held-out metrics", async () => {
    const c = testCoordinator({
      federationId: 'eval',
      roundDeadlineMs: 3000,
    });
    const withEval = (acc: number, count: number): LocalTrainer => {
      const inner = constantTrainer(1, 5);
      return { numExamples: 5, train: async (p, g) => ({ ...(await inner.train(p, g)), metrics: { evalCount: count, evalAcc: acc } }) };
    };
    const run = c.run();
    await Promise.all([withEval(0.25, 4), withEval(1, 12)].map((t, i) => runClient({ name: `c${i}`, connection: inProcessConnection(c), trainer: t, pollMs: 100 })));
    const [h] = await run;
    expect(h!.status).toBe('completed');
    expect(h!.evaluation).toEqual({ clients: 2, count: 16, acc: (1 + 12) / 16, accNorm: (1 + 12) / 16 });
  });
});
