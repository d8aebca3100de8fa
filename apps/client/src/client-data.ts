import type { CausalLM } from '@fedlora/model';
import { readTextDocuments, splitHeldOut, tokenizeToSequences } from '@fedlora/train';

/** A client's private data, tokenized and split. */
export interface ClientData {
  train: Int32Array[];
  heldOut: Int32Array[];
}

/**
 * Reads a text or JSONL file, tokenizes it and holds out the last `evalFraction` of the
 * sequences (contiguous, so held-out text is not interleaved with training text).
 */
export async function loadClientData(model: CausalLM, path: string, opts: { seqLen: number; evalFraction?: number; jsonField?: string }): Promise<ClientData> {
  const docs = await readTextDocuments(path, opts.jsonField ? { format: 'jsonl', field: opts.jsonField } : {});
  return splitSequences(tokenizeToSequences(model, docs, opts.seqLen), opts.evalFraction ?? 0.1);
}

/** Splits packed sequences into train and held-out parts. */
export function splitSequences(seqs: Int32Array[], evalFraction: number): ClientData {
  const { train, heldOut } = splitHeldOut(seqs, evalFraction);
  return { train, heldOut };
}
