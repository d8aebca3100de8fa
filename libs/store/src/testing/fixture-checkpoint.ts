/** Deterministic checkpoint bytes for a round, so a test can recompute what a killed child wrote. */
import { createHash } from 'node:crypto';

/** `size` bytes derived from the round number (SHA-256 in counter mode). */
export function fixtureCheckpoint(round: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) {
    const block = createHash('sha256').update(`round:${round}:block:${i}`).digest();
    out.set(block.subarray(0, Math.min(32, size - off)), off);
  }
  return out;
}
