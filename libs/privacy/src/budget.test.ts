import { describe, expect, it } from 'vitest';
import type { PrivacyEvent } from './accountant.js';
import { BudgetExceededError, PrivacyBudget } from './budget.js';

const round: PrivacyEvent = { mechanism: 'gaussian', noiseMultiplier: 2, steps: 1 };

describe('PrivacyBudget', () => {
  it('refuses the round that would exceed a small budget and accepts those before it', () => {
    const budget = new PrivacyBudget({ epsilon: 3, delta: 1e-5 });
    let accepted = 0;
    for (let r = 0; r < 100; r++) {
      const plan = budget.wouldExceed(round);
      if (plan.exceed) {
        expect(plan.epsilonAfter).toBeGreaterThan(3);
        break;
      }
      budget.commit(round);
      accepted++;
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(100);
    expect(budget.spent().epsilon).toBeLessThanOrEqual(3);
    expect(() => budget.commit(round)).toThrow(BudgetExceededError);
    expect(() => budget.commit(round)).toThrow(/budget exhausted/);
  });

  it('a refused commit records nothing', () => {
    const budget = new PrivacyBudget({ epsilon: 0.5, delta: 1e-5 });
    const before = budget.spent().epsilon;
    expect(() => budget.commit({ mechanism: 'gaussian', noiseMultiplier: 0.5, steps: 1 })).toThrow(BudgetExceededError);
    expect(budget.spent().epsilon).toBe(before);
  });

  it('round-trips through JSON and keeps composing', () => {
    const budget = new PrivacyBudget({ epsilon: 10, delta: 1e-6, orders: 'opacus' });
    budget.commit(round);
    const copy = PrivacyBudget.fromJSON(JSON.parse(JSON.stringify(budget)));
    expect(copy.spent().epsilon).toBe(budget.spent().epsilon);
    copy.commit(round);
    budget.commit(round);
    expect(copy.spent().epsilon).toBe(budget.spent().epsilon);
    expect(copy.remaining()).toBeCloseTo(10 - budget.spent().epsilon, 12);
  });

  it('rejects invalid limits', () => {
    expect(() => new PrivacyBudget({ epsilon: 0, delta: 1e-5 })).toThrow(/epsilon/);
    expect(() => new PrivacyBudget({ epsilon: 1, delta: 1 })).toThrow(/delta/);
  });
});
