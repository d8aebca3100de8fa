import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packTokens, readTextDocuments, splitHeldOut } from './data.js';
import { warmupCosine } from './schedule.js';

describe('packing', () => {
  it('cuts windows of seqLen + 1 with stride seqLen so every token after the first is a target once', () => {
    const w = packTokens([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3);
    expect(w.map((x) => [...x])).toEqual([
      [0, 1, 2, 3],
      [3, 4, 5, 6],
      [6, 7, 8, 9],
    ]);
    expect(packTokens([1, 2, 3], 3)).toEqual([]);
  });

  it('holds out the last fraction, at least one sequence', () => {
    expect(splitHeldOut([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.2)).toEqual({ train: [1, 2, 3, 4, 5, 6, 7, 8], heldOut: [9, 10] });
    expect(splitHeldOut([1, 2], 0.01).heldOut).toEqual([2]);
  });
});

describe('text files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedlora-data-'));

  it('reads JSONL with a chosen field, one document a line', async () => {
    const f = join(dir, 'a.jsonl');
    writeFileSync(f, '{"body":"first","id":1}\n\n{"body":"second"}\n');
    expect(await readTextDocuments(f, { field: 'body' })).toEqual(['first', 'second']);
  });

  it('names the file, line and field when a JSONL record lacks the field', async () => {
    const f = join(dir, 'b.jsonl');
    writeFileSync(f, '{"text":"ok"}\n{"other":1}\n');
    await expect(readTextDocuments(f)).rejects.toThrow(/b\.jsonl:2: field "text" must be a string, received undefined/);
  });

  it('reads plain text as one document', async () => {
    const f = join(dir, 'c.txt');
    writeFileSync(f, 'Call me Ishmael.\n');
    expect(await readTextDocuments(f)).toEqual(['Call me Ishmael.\n']);
  });
});

describe('warmup + cosine schedule', () => {
  it('ramps linearly, peaks after warmup, and decays to the floor at the end', () => {
    expect(warmupCosine(0, 100, 1, 10)).toBeCloseTo(0.1);
    expect(warmupCosine(9, 100, 1, 10)).toBeCloseTo(1);
    expect(warmupCosine(10, 100, 1, 10)).toBeCloseTo(1);
    expect(warmupCosine(55, 100, 1, 10)).toBeCloseTo(0.5);
    expect(warmupCosine(100, 100, 1, 10, 0.1)).toBeCloseTo(0.1);
  });
});
