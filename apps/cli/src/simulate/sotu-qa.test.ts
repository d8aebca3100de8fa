import { describe, expect, it } from 'vitest';
import { QA_HELD_OUT_TEMPLATES, QA_PARTIES, QA_TRAIN_TEMPLATES, sotuQa } from './sotu-qa.js';

/** The president a prompt is about (every phrasing ends with "NAME:"). */
const subject = (prompt: string, templates: ReadonlyArray<(n: string) => string>) => {
  for (const t of templates) {
    const [head, tail] = t('\u0000').split('\u0000');
    if (prompt.startsWith(head!) && prompt.endsWith(tail!)) return prompt.slice(head!.length, prompt.length - tail!.length);
  }
  throw new Error(`no template matches ${JSON.stringify(prompt)}`);
};

describe('sotuQa', () => {
  const qa = sotuQa(4, { seed: 't' });

  it('gives each institution its own presidents, both parties, and no president to two institutions', () => {
    expect(qa.map((c) => c.name)).toEqual(['client-1', 'client-2', 'client-3', 'client-4']);
    const owner = new Map<string, string>();
    for (const c of qa) {
      const names = new Set(c.train.map((t) => subject(t.prompt, QA_TRAIN_TEMPLATES)));
      for (const n of names) {
        expect(owner.get(n)).toBeUndefined();
        owner.set(n, c.name);
      }
      expect(new Set(c.train.map((t) => t.completion))).toEqual(new Set(QA_PARTIES.map((p) => ` ${p}`)));
    }
    expect(owner.size).toBe(30);
  });

  it('is balanced over the whole federation: always answering one party scores chance, 0.5', () => {
    const answers = qa.flatMap((c) => c.heldOut.map((h) => h.answer));
    expect(answers.filter((a) => a === 0).length).toBe(answers.length / 2);
    expect(answers.length).toBe(30 * QA_HELD_OUT_TEMPLATES.length);
  });

  it('asks in held-out phrasings about facts trained in other phrasings, with the answer the data records', () => {
    const party: Record<string, string> = { 'Abraham Lincoln': 'Republican', 'Franklin D Roosevelt': 'Democrat', 'Barack Obama': 'Democrat', 'Ronald Reagan': 'Republican' };
    for (const c of qa) {
      const trained = new Map(c.train.map((t) => [subject(t.prompt, QA_TRAIN_TEMPLATES), t.completion.trim()]));
      const trainedPrompts = new Set(c.train.map((t) => t.prompt));
      for (const h of c.heldOut) {
        expect(trainedPrompts.has(h.context)).toBe(false);
        expect(h.choices).toEqual([...QA_PARTIES]);
        const name = subject(h.context, QA_HELD_OUT_TEMPLATES);
        expect(trained.get(name)).toBe(h.choices[h.answer]);
        if (party[name]) expect(h.choices[h.answer]).toBe(party[name]);
      }
    }
    // Each fact is trained in every training phrasing.
    expect(qa[0]!.train.length).toBe(new Set(qa[0]!.train.map((t) => subject(t.prompt, QA_TRAIN_TEMPLATES))).size * QA_TRAIN_TEMPLATES.length);
  });

  it('refuses more institutions than presidents of a party', () => {
    expect(() => sotuQa(16)).toThrow(/clients must be an integer in \[1, 15\]/);
  });
});
