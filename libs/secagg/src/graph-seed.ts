import { createHash } from 'node:crypto';

/**
 * The SecAgg+ graph seed, derived rather than chosen: SHA-256 over a domain label, the round and
 * every cohort member's (id, Ed25519 identity key) in ascending id order. Bell et al. 2020
 * (Sec. 3-4) assume the Harary graph's node placement is random and independent of which
 * clients are corrupted; a seed the server picks freely would let a malicious server place its
 * clients around a victim. Derived, the seed is fixed once the cohort is, and every client
 * recomputes it and refuses a config carrying another one (SecAggClient, check 'graph'). The
 * server still chooses the cohort: each choice is one fresh draw of the placement, so trying
 * m cohorts multiplies the adversary's success bound by at most m (see SECURITY.md).
 */
export function deriveGraphSeed(round: number, cohort: ReadonlyMap<number, Uint8Array> | Iterable<readonly [number, Uint8Array]>): Uint8Array {
  if (!Number.isInteger(round) || round < 0 || round >= 2 ** 32) throw new RangeError(`deriveGraphSeed: round must be an integer 0..2^32-1, received ${round}`);
  const entries = [...cohort].sort((a, b) => a[0] - b[0]);
  const h = createHash('sha256').update('fedlora/secagg+/graph-seed/v1');
  const u32 = (x: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(x);
    return b;
  };
  h.update(u32(round)).update(u32(entries.length));
  for (const [id, key] of entries) {
    if (key.length !== 32) throw new RangeError(`deriveGraphSeed: identity key of client ${id} must be 32 bytes, received ${key.length}`);
    h.update(u32(id)).update(key);
  }
  return new Uint8Array(h.digest());
}
