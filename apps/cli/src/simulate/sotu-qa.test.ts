import { describe, expect, it } from 'vitest';
import { sotuQa, sotuQuestion } from './sotu-qa.js';

describe('sotuQa', () => {
  const qa = sotuQa(4, { seed: 't' });

  it('gives each institution its own era, with held-out years never asked in training', () => {
    expect(qa.map((c) => c.name)).toEqual(['client-1', 'client-2', 'client-3', 'client-4']);
    for (const c of qa) {
      const trainedYears = new Set(c.train.map((t) => /address of (\d+)\?/.exec(t.prompt)![1]));
      for (const h of c.heldOut) expect(trainedYears.has(/address of (\d+)\?/.exec(h.question)![1]!)).toBe(false);
      expect(c.train.length).toBeGreaterThan(4 * c.heldOut.length / 2);
    }
  });

  it('asks 4-way questions whose answer and distractor are the two facts of the context', () => {
    for (const h of qa.flatMap((c) => c.heldOut)) {
      expect(h.choices).toHaveLength(4);
      expect(new Set(h.choices).size).toBe(4);
      const year = Number(/address of (\d+)\?/.exec(h.question)![1]);
      expect(h.context).toContain(`The address of ${year} was delivered by ${h.choices[h.answer]}.`);
      expect(h.context.endsWith(`Question: ${sotuQuestion(year)}\nAnswer:`)).toBe(true);
      expect(h.choices.filter((c) => h.context.includes(`delivered by ${c}.`))).toHaveLength(2);
    }
  });

  it('trains on the answer as the completion of the same prompt format', () => {
    const t = qa[0]!.train[0]!;
    expect(t.prompt).toMatch(/^The address of \d+ was delivered by .+\. The address of \d+ was delivered by .+\.\nQuestion: Who delivered the State of the Union address of \d+\?\nAnswer:$/);
    expect(t.prompt).toContain(`delivered by${t.completion}.`);
  });
});
