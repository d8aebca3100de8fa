/**
 * Privacy units for ghost clipping: when one unit (a document, a patient) spans several rows of a
 * batch, DP-SGD clips the unit's gradient, the sum of its rows' gradients (Chua et al. 2024, "Mind
 * the Privacy Unit! User-Level Differential Privacy for Language Model Fine-Tuning", Section 3:
 * clip each user's summed gradient). For a LoRA layer the unit's gradient is
 * sum over its tokens t of the per-token outer products, so the unit is exactly one example whose
 * tokens are the concatenation of its rows' tokens: everything that works per example works per
 * unit once rows are grouped.
 */

/** Rows grouped by unit: `rows[u]` lists unit u's batch rows in batch order. */
export interface UnitGrouping {
  /** Number of units U (unit indices are 0..U-1). */
  units: number;
  /** Each unit's rows, in increasing row order. */
  rows: Int32Array[];
  /** The largest number of rows of one unit. */
  maxRows: number;
}

/**
 * Validates `unitOf` (one unit index per batch row, every index in 0..U-1 used at least once) and
 * groups the rows by unit. Without `unitOf` every row is its own unit.
 */
export function groupUnits(batch: number, unitOf?: ArrayLike<number>): UnitGrouping {
  if (unitOf === undefined) return { units: batch, rows: Array.from({ length: batch }, (_, i) => Int32Array.of(i)), maxRows: 1 };
  if (unitOf.length !== batch) throw new RangeError(`unitOf must hold one unit index per sequence (${batch}), received ${unitOf.length}`);
  let units = 0;
  for (let i = 0; i < batch; i++) {
    const u = unitOf[i]!;
    if (!Number.isInteger(u) || u < 0 || u >= batch) throw new RangeError(`unitOf[${i}] must be an integer in [0, ${batch - 1}] (units are numbered 0..U-1), received ${u}`);
    units = Math.max(units, u + 1);
  }
  const counts = new Int32Array(units);
  for (let i = 0; i < batch; i++) counts[unitOf[i]!]!++;
  const missing = counts.indexOf(0);
  if (missing >= 0) throw new RangeError(`unit ${missing} has no sequence in the batch; number the units of a batch densely 0..U-1`);
  const rows = Array.from(counts, (n) => new Int32Array(n));
  const fill = new Int32Array(units);
  for (let i = 0; i < batch; i++) {
    const u = unitOf[i]!;
    rows[u]![fill[u]!++] = i;
  }
  return { units, rows, maxRows: Math.max(0, ...counts) };
}

/**
 * Unit u's gradient from the rows' gradients: `perRow` holds B consecutive blocks of `size`
 * float32 values (row i at i * size); the result is the float32 sum of unit u's rows taken in
 * batch order (a Float32Array rounds after every addition). It depends on unit u's rows alone,
 * which the floating-point sensitivity argument needs (dp-sgd-ghost.ts). A single-row unit is
 * returned as a view, without copying.
 */
export function unitSlice(perRow: Float32Array, size: number, rows: Int32Array): Float32Array {
  if (rows.length === 1) return perRow.subarray(rows[0]! * size, (rows[0]! + 1) * size);
  const out = new Float32Array(size);
  for (const r of rows) {
    const off = r * size;
    for (let k = 0; k < size; k++) out[k] = out[k]! + perRow[off + k]!;
  }
  return out;
}

/**
 * Row-major [B * T, width] data regrouped as [U * maxRows * T, width]: unit u's rows laid end to
 * end from row block u * maxRows, zero-padded (zero rows add nothing to a gradient or norm).
 */
export function groupRowBlocks(data: Float32Array, width: number, seqLen: number, g: UnitGrouping): Float32Array {
  const block = seqLen * width;
  const out = new Float32Array(g.units * g.maxRows * block);
  g.rows.forEach((rows, u) => rows.forEach((r, k) => out.set(data.subarray(r * block, (r + 1) * block), (u * g.maxRows + k) * block)));
  return out;
}
