/**
 * Reverse-mode gradients that free memory as the backward pass goes, a drop-in for
 * `tf.valueAndGrads`. tfjs' own `engine.gradients` keeps every tensor saved for the backward pass
 * and every intermediate gradient alive until the whole backward pass ends, so the peak is about
 * twice the activations. Walking the tape in reverse, a tensor's gradient is complete once the
 * node that produced it is reached (all its consumers come later on the tape), so here each node's
 * saved tensors and its outputs' gradients are disposed right after the node is differentiated.
 *
 * Uses the engine's tape the way `engine.gradients` (tfjs-core 4.22, engine.ts) does; the pruning
 * of the tape mirrors tfjs' `getFilteredNodesXToY` (tape.ts), which tfjs-core does not export.
 */
import * as tf from '@tensorflow/tfjs-core';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/** Nodes on a path from some x to y, with inputs that are not functions of x pruned. */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set<number>(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodesFromX.add(node.id);
      for (const o of node.outputs) fromX.add(o.id);
    }
  }
  const leadToY = new Set<number>([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => leadToY.has(o.id))) {
      nodesToY.add(node.id);
      for (const t of Object.values(node.inputs)) leadToY.add(t.id);
    }
  }
  const out: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, t] of Object.entries(node.inputs)) if (fromX.has(t.id)) inputs[name] = t;
    out.push({ ...node, inputs });
  }
  return out;
}

/**
 * Like `tf.valueAndGrads(f)(xs)`: the scalar value of f and its gradients with respect to xs (the
 * caller owns all of them), with the backward pass's memory released node by node.
 */
export function valueAndGradsFrugal(f: (...xs: tf.Tensor[]) => tf.Scalar): (xs: tf.Tensor[]) => { value: tf.Scalar; grads: tf.Tensor[] } {
  return (xs) => {
    if (xs.length === 0) throw new RangeError('valueAndGradsFrugal: xs must hold at least one tensor, received 0');
    const engine = tf.engine() as unknown as EngineInternals;
    if (engine.state.gradientDepth !== 0) {
      // Higher-order gradients need the saved tensors after this pass: use tfjs' own.
      return tf.valueAndGrads(f)(xs) as { value: tf.Scalar; grads: tf.Tensor[] };
    }
    const y = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => engine.tidy('forward', () => f(...xs)),
    );
    if (!(y instanceof tf.Tensor) || y.rank !== 0) throw new TypeError(`valueAndGradsFrugal: f must return a scalar tensor, received ${String(y)}`);
    const tape = engine.state.activeTape ?? [];
    try {
      const nodes = nodesFromXToY(tape, xs, y);
      if (nodes.length === 0) throw new Error('valueAndGradsFrugal: y does not depend on xs (no path on the tape)');
      const xIds = new Set(xs.map((x) => x.id));
      const grads = engine.tidy('backward', () => {
        const acc = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
        // A gradient function may hand back the very tensor it received (Identity), so a tensor
        // can sit in the map under two ids; it is disposed only when no entry holds it.
        const holders = new Map<tf.Tensor, number>([[acc.get(y.id)!, 1]]);
        const release = (id: number): void => {
          const g = acc.get(id);
          if (!g) return;
          acc.delete(id);
          const n = (holders.get(g) ?? 1) - 1;
          if (n > 0) holders.set(g, n);
          else {
            holders.delete(g);
            g.dispose();
          }
        };
        const hold = (id: number, g: tf.Tensor): void => {
          acc.set(id, g);
          holders.set(g, (holders.get(g) ?? 0) + 1);
        };
        for (let i = nodes.length - 1; i >= 0; i--) {
          const node = nodes[i]!;
          if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
          const dys = node.outputs.map((o) => acc.get(o.id) ?? null);
          const inputGrads = node.gradient(dys);
          for (const [name, x] of Object.entries(node.inputs)) {
            const gradOf = inputGrads[name];
            if (!gradOf) throw new Error(`Cannot backprop through input ${name} of ${node.kernelName}. Available gradients: ${Object.keys(inputGrads)}.`);
            const dx = tf.tidy(gradOf);
            if (dx.dtype !== 'float32') throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input ${name} must be float32, received ${dx.dtype}`);
            if (dx.shape.join() !== x.shape.join()) {
              throw new Error(`Error in gradient for op ${node.kernelName}: the gradient of input '${name}' has shape [${dx.shape}], expected [${x.shape}]`);
            }
            const prev = acc.get(x.id);
            if (prev) {
              const sum = tf.add(prev, dx);
              release(x.id);
              if (!holders.has(dx)) dx.dispose();
              hold(x.id, sum);
            } else hold(x.id, dx);
          }
          // Every consumer of this node's outputs came later on the tape: their gradients are done.
          for (const o of node.outputs) if (!xIds.has(o.id)) release(o.id);
          for (const t of node.saved ?? []) t.dispose();
        }
        return xs.map((x) => {
          const g = acc.get(x.id);
          return g ?? tf.zerosLike(x);
        });
      });
      return { value: y as tf.Scalar, grads };
    } finally {
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
    }
  };
}
