/**
 * What a training worker needs to rebuild a simulated client's data from its partition id
 * alone: the split settings (every worker derives the same partition from the same seed, as the
 * simulator does) and the tokenization of one client's share, cached per client.
 */
import type { CausalLM } from '@fedlora/model';
import { splitRecordsByUnit, tokenizeToSequences } from '@fedlora/train';
import type { Partition } from './partition.js';
import { partitionCorpus } from './partition.js';
import type { ClientCorpus } from './sotu-partition.js';
import { splitIntoRecords } from './sotu-partition.js';

/** The settings that fix every client's text: same values in the simulator and its workers give the same sequences. */
export interface WorkerDataSpec {
  clients: number;
  charsPerClient: number;
  partition: Partition;
  seed: string;
  seqLen: number;
  evalFraction: number;
  recordChars: number;
}

/** One client's training sequences, as the simulator builds them: its records, the held-out ones removed, tokenized and packed. */
export function clientTrainSequences(model: CausalLM, corpus: ClientCorpus, spec: Pick<WorkerDataSpec, 'seqLen' | 'evalFraction' | 'recordChars'>): Int32Array[] {
  const records = corpus.documents.flatMap((d) => splitIntoRecords(d, spec.recordChars)).map((text) => ({ text }));
  const split = splitRecordsByUnit(records, { unit: 'document' }, spec.evalFraction);
  return tokenizeToSequences(
    model,
    split.train.map((r) => r.text),
    spec.seqLen,
  );
}

/** A worker's view of the population's data: the partition is computed once, each client's sequences on first use. */
export class WorkerClientData {
  private corpora: ClientCorpus[] | undefined;
  private readonly cache = new Map<number, Int32Array[]>();

  constructor(
    private readonly model: CausalLM,
    private readonly spec: WorkerDataSpec,
    /** Clients whose sequences stay cached (the rest are tokenized again when drawn again). */
    private readonly cacheLimit = 256,
  ) {}

  /** The training sequences of client `index` (0-based partition id). */
  train(index: number): Int32Array[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.spec.clients) throw new RangeError(`partition id must be an integer in [0, ${this.spec.clients}), received ${index}`);
    const hit = this.cache.get(index);
    if (hit) return hit;
    this.corpora ??= partitionCorpus(this.spec.clients, this.spec.charsPerClient, this.spec.partition, { seed: this.spec.seed, recordChars: this.spec.recordChars });
    const seqs = clientTrainSequences(this.model, this.corpora[index]!, this.spec);
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(index, seqs);
    return seqs;
  }
}
