/**
 * Grouping per-sequence gradients by privacy unit (Chua et al. 2024, user-level DP-SGD: a unit's
 * gradient is the sum of the gradients of all its sampled sequences, clipped as one). For a LoRA
 * linear layer the unit's gradient is s sum_{t in unit} g_t h_t^T over all tokens of all its
 * sequences, i.e. the sum of its sequences' per-sequence gradients, so a unit behaves like one
 * example whose tokens are the concatenation of its sequences.
 *
 * Float safety (libs/privacy grid-clipped-sum.ts): a unit's row is the float64 sum of its own
 * sequences' float32 rows, taken in batch order, rounded once to float32. It depends on that
 * unit's sequences alone, and it is float32-representable, as `GridClippedSum.add` needs for the
 * proof that one unit moves the integer sum by at most C + sqrt(d) h / 2.
 */

/** Validates a unit index per sequence (integers 0 .. G-1, each used) and returns G. */
export function unitCount(unitOf: readonly number[], sequences: number): number {
  if (unitOf.length !== sequences) throw new RangeError(`units must give one unit per sequence (${sequences}), received ${unitOf.length}`);
  let g = 0;
  for (const u of unitOf) {
    if (!Number.isInteger(u) || u < 0) throw new RangeError(`units must hold integer unit indices >= 0, received ${u}`);
    g = Math.max(g, u + 1);
  }
  const seen = new Uint8Array(g);
  for (const u of unitOf) seen[u] = 1;
  const missing = seen.indexOf(0);
  if (missing >= 0) throw new RangeError(`units must number the units 0 .. ${g - 1} without gaps, unit ${missing} has no sequence`);
  return g;
}

/**
 * Rows [B, size] of per-sequence values summed into rows [G, size] by unit: out[u] = fl32(sum over
 * the sequences i of unit u, in order, of rows[i]) with the sum in float64.
 */
export function sumRowsByUnit(rows: Float32Array, size: number, unitOf: readonly number[], units: number): Float32Array {
  if (rows.length !== unitOf.length * size) throw new RangeError(`rows must hold ${unitOf.length} x ${size} values, received ${rows.length}`);
  const acc = new Float64Array(units * size);
  unitOf.forEach((u, i) => {
    const src = rows.subarray(i * size, (i + 1) * size);
    const off = u * size;
    for (let k = 0; k < size; k++) acc[off + k] = acc[off + k]! + src[k]!;
  });
  return Float32Array.from(acc);
}
