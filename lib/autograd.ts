// The tape: ops record a GradNode on their output when any input requires gradients, and
// backward() walks the graph in reverse topological order.
import { describe, fail } from './errors';
import { GradNode, Tensor, tidy } from './tensor';
import { native } from './native';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording gradients (inference, parameter updates). */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== 'function') fail('INVALID_ARGUMENT', `noGrad: expected a function, got ${describe(fn)}`);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn with gradient recording on, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T {
  if (typeof fn !== 'function') fail('INVALID_ARGUMENT', `enableGrad: expected a function, got ${describe(fn)}`);
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** @internal Whether an op on these inputs must be recorded. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** @internal Attaches a node to an op's output. */
export function record(out: Tensor, name: string, inputs: (Tensor | null)[], backward: (g: Tensor) => (Tensor | null)[],
  saved?: Tensor[]): Tensor {
  // saved: tensors only the backward uses (not graph nodes); freed with the graph.
  const node: GradNode = { name, inputs: inputs.map((t) => (t && t.requiresGrad ? t : null)), backward, saved };
  out.gradFn = node;
  out.requiresGrad = true;
  return out;
}

export interface BackwardOptions {
  /** Keep the graph's intermediate tensors after backward (default false: they are freed). */
  retainGraph?: boolean;
}

// ---- gradient-ready hooks (used by dist.DistributedDataParallel) ----

const gradReadyHooks = new WeakMap<Tensor, ((leaf: Tensor) => void)[]>();

/**
 * Calls fn(leaf) during backward() as soon as leaf's gradient for this backward is complete
 * (accumulated into leaf.grad, or written there directly by a fused op), before backward goes
 * on. Returns a function that removes the hook.
 */
export function registerGradReadyHook(leaf: Tensor, fn: (leaf: Tensor) => void): () => void {
  const list = gradReadyHooks.get(leaf) ?? [];
  list.push(fn);
  gradReadyHooks.set(leaf, list);
  return () => {
    const i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  };
}

const gradHomes = new WeakMap<Tensor, () => Tensor>();

/**
 * Gives leaf's gradient a home: when backward() makes a new gradient for leaf, it asks home for
 * the tensor to hold it (of leaf's shape; its old contents are written over) and writes there
 * instead of allocating. DistributedDataParallel places gradients in its buckets this way.
 * Returns a function that removes the home.
 */
export function setGradHome(leaf: Tensor, home: () => Tensor): () => void {
  gradHomes.set(leaf, home);
  return () => {
    if (gradHomes.get(leaf) === home) gradHomes.delete(leaf);
  };
}

/**
 * Where a fused backward may put leaf's gradient itself: into its current gradient (added to it,
 * fresh = false), else into a tensor from its home (written over, fresh = true: the op then makes
 * it leaf.grad), else null (the op makes a new gradient). Overwriting rather than adding into a
 * zeroed home saves a pass over the gradient (DDP's 7.4 MB bucket: 0.5 ms a step).
 */
export function gradSink(leaf: Tensor): { into: Tensor; fresh: boolean } | null {
  if (leaf.grad !== null && !leaf.grad.isDisposed) return { into: leaf.grad, fresh: false };
  const home = gradHomes.get(leaf);
  return home ? { into: home(), fresh: true } : null;
}

function accumulate(leaf: Tensor, g: Tensor): void {
  if (leaf.grad === null || leaf.grad.isDisposed) {
    const home = gradHomes.get(leaf);
    if (home) {
      leaf.grad = home().keep();
      native.copyInto(leaf.grad.handle, g.handle);
    } else {
      // Own copy: g may be a view of another tensor or shared with another leaf.
      leaf.grad = new Tensor(native.clone(g.handle)).keep();
    }
  } else {
    native.binaryInplace('add', leaf.grad.handle, g.handle);
  }
}

/**
 * Computes d(root)/d(leaf) for every leaf that requires gradients and adds it to leaf.grad.
 * root must be a scalar unless `grad` (its gradient) is given. Afterwards the graph's
 * intermediate tensors are freed (unless retainGraph); the root stays usable.
 */
export function backward(root: Tensor, grad?: Tensor, options: BackwardOptions = {}): void {
  if (!(root instanceof Tensor)) fail('INVALID_ARGUMENT', `backward: expected a Tensor, got ${describe(root)}`);
  if (!root.requiresGrad) {
    fail('INVALID_ARGUMENT', 'backward: this tensor does not require gradients (no input of the computation had ' +
      'requiresGrad, or an earlier backward() already freed its graph: pass {retainGraph: true} to call it twice)');
  }
  if (grad === undefined && root.size !== 1) {
    fail('SHAPE_MISMATCH', `backward: a gradient must be given for a non-scalar output (shape [${root.shape.join(', ')}])`);
  }
  if (grad !== undefined) {
    if (!(grad instanceof Tensor)) fail('INVALID_ARGUMENT', `backward: expected the gradient to be a Tensor, got ${describe(grad)}`);
    if (grad.shape.join(',') !== root.shape.join(',')) {
      fail('SHAPE_MISMATCH', `backward: gradient shape [${grad.shape.join(', ')}] differs from the output's [${root.shape.join(', ')}]`);
    }
  }
  // Reverse topological order of the nodes reachable from root.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn ? t.gradFn.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  order.reverse();

  noGrad(() => tidy(() => {
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, grad ?? new Tensor(native.full(root.shape, 1, 'float32', root.device)));
    for (const t of order) {
      const g = grads.get(t);
      if (!t.gradFn && t.requiresGrad) {
        // Reverse topological order: every consumer of this leaf has run, so its gradient is final.
        if (g) accumulate(t, g);
        const hooks = gradReadyHooks.get(t);
        if (hooks) for (const h of hooks.slice()) h(t);
        continue;
      }
      if (!g) continue;
      if (!t.gradFn) continue;
      const inputGrads = t.gradFn.backward(g);
      const inputs = t.gradFn.inputs;
      for (let k = 0; k < inputs.length; k++) {
        const input = inputs[k];
        const ig = inputGrads[k];
        if (!input || !ig) continue;
        const prev = grads.get(input);
        grads.set(input, prev ? new Tensor(native.binary('add', prev.handle, ig.handle)) : ig);
      }
    }
  }));

  if (!options.retainGraph) {
    const freeSaved = (node: GradNode) => {
      for (const s of node.saved ?? []) if (!s._kept) s.dispose();
    };
    for (const t of order) {
      if (t === root || !t.gradFn) continue;
      freeSaved(t.gradFn);
      t.gradFn = null;
      if (!t._kept) t.dispose();
    }
    // The graph is gone: a second backward() through it is an error, as in PyTorch.
    if (root.gradFn) freeSaved(root.gradFn);
    root.gradFn = null;
    root.requiresGrad = false;
  }
}
