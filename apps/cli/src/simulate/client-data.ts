import type { CausalLM } from '@fedlora/model';
import { instructSegments, instructTrainingSequences, packUnits, splitRecordsByUnit, tokenizeToSequences, type McqItem, type UnitData } from '@fedlora/train';
import { mobyDickSplit } from '../model/pretrain.js';
import { partitionCorpus } from './partition.js';
import { splitIntoRecords } from './sotu-partition.js';
import { sotuQa } from './sotu-qa.js';
import type { SimulationOptions } from './simulation-types.js';

/** Characters of one simulated record (a document: DP-SGD's default privacy unit). */
export const SIMULATED_RECORD_CHARS = 400;

/** Clients whose held-out text makes the federation's eval set (spread over the population). */
export const EVAL_CLIENTS = 64;

/** One institution's tokenized data: built when it is drawn into a round, dropped after it. */
export interface ClientData {
  name: string;
  era: string;
  /** Characters of text (task text). */
  chars?: number;
  train: Int32Array[];
  /** DP-SGD: the training sequences grouped by privacy unit. */
  units?: UnitData;
  heldOut: Int32Array[];
  /** Task qa: held-out multiple-choice questions (federated evaluation). */
  mcq?: McqItem[];
}

/** What the report and the registration need of a client without keeping its data. */
export interface ClientSizes {
  name: string;
  era: string;
  chars?: number;
  trainSequences: number;
  heldOutSequences: number;
  trainUnits?: number;
}

/**
 * A simulated population's data: the partition index (which text belongs to whom) plus, per
 * client, only its sizes. `build(i)` tokenizes client i's partition on demand; nothing of it is
 * kept, so memory follows the cohort, not the population.
 */
export interface PopulationData {
  readonly sizes: readonly ClientSizes[];
  build(index: number): ClientData;
  /** The federation's held-out eval set: the held-out sequences of up to EVAL_CLIENTS clients spread evenly (all of them below that). */
  readonly evalSet: Int32Array[];
  /** Task qa: every client's held-out questions (the final evaluation). */
  readonly mcq: McqItem[];
}

/** Indices of the clients whose held-out text is evaluated: all, or EVAL_CLIENTS spread evenly. */
export function evalClientIndices(population: number): number[] {
  if (population <= EVAL_CLIENTS) return Array.from({ length: population }, (_, i) => i);
  return Array.from({ length: EVAL_CLIENTS }, (_, i) => Math.floor((i * population) / EVAL_CLIENTS));
}

/** The population's data for `o` (task text: SOTU partitions; task qa: SOTU QA). */
export function populationData(model: CausalLM, o: SimulationOptions): PopulationData {
  const build = o.task === 'qa' ? qaBuilder(model, o) : textBuilder(model, o);
  const sizes: ClientSizes[] = [];
  const evalOf = new Set(evalClientIndices(build.count));
  const evalSet: Int32Array[] = [];
  const mcq: McqItem[] = [];
  // One pass to learn each client's sizes (its registration claim and the report); the tokens are dropped.
  for (let i = 0; i < build.count; i++) {
    const d = build.one(i);
    sizes.push({ name: d.name, era: d.era, ...(d.chars !== undefined ? { chars: d.chars } : {}), trainSequences: d.train.length, heldOutSequences: d.heldOut.length, ...(d.units ? { trainUnits: d.units.units.length } : {}) });
    if (evalOf.has(i)) evalSet.push(...d.heldOut);
    if (d.mcq) mcq.push(...d.mcq);
  }
  return { sizes, build: build.one, evalSet, mcq };
}

/** Task text: each client's share of the SOTU corpus, cut into records; whole records are held out. */
function textBuilder(model: CausalLM, o: SimulationOptions) {
  const corpora = partitionCorpus(o.clients, o.charsPerClient, o.partition ?? { kind: 'era' }, { seed: o.seed, recordChars: SIMULATED_RECORD_CHARS });
  const one = (i: number): ClientData => {
    const c = corpora[i]!;
    // Runs with and without DP-SGD train and evaluate on the same text.
    const records = c.documents.flatMap((d) => splitIntoRecords(d, SIMULATED_RECORD_CHARS)).map((text) => ({ text }));
    const split = splitRecordsByUnit(records, { unit: 'document' }, o.evalFraction);
    const heldOut = tokenizeToSequences(model, split.heldOut.map((r) => r.text), o.seqLen).slice(0, o.evalSequences);
    const units: UnitData | undefined = o.dpSgd ? packUnits(model, split.train, o.seqLen, { unit: o.dpSgd.privacyUnit ?? 'document' }) : undefined;
    const train = units ? units.sequences : tokenizeToSequences(model, split.train.map((r) => r.text), o.seqLen);
    return { name: c.name, era: c.era, chars: c.documents.reduce((n, d) => n + d.length, 0), train, ...(units ? { units } : {}), heldOut };
  };
  return { count: corpora.length, one };
}

/** Task qa: each client's QA examples (masked sequences) and held-out questions; the general text is held-out Moby-Dick. */
function qaBuilder(model: CausalLM, o: SimulationOptions) {
  const general = tokenizeToSequences(model, mobyDickSplit().heldOut, o.seqLen);
  const clients = sotuQa(o.clients, { seed: o.seed });
  const one = (i: number): ClientData => {
    const c = clients[i]!;
    const examples = c.train.map((r) => instructSegments(model.tokenizer, r, 'prompt-completion'));
    const train = instructTrainingSequences(model.tokenizer, examples, model.config.maxPositions).sequences;
    const heldOut = general.slice(i * o.evalSequences, (i + 1) * o.evalSequences);
    return { name: c.name, era: c.era, train, heldOut, mcq: c.heldOut as McqItem[] };
  };
  return { count: clients.length, one };
}
