import type { BranchState, IterationState, NestedStepState, StepStateBase } from './job-state.js';
import type { ParsedStepPath, PathList, PathStep } from './step-path.js';

/**
 * The tree of a block's inner steps, found or grown one path at a time by
 * the reducer (read/job-state.ts): a path's lists and steps are added the
 * first time a row names them, in the order rows arrive.
 */

function newStep(at: PathStep): NestedStepState {
  return { path: at.path, name: at.id, status: 'RUNNING', attempts: 0, startedAt: null, endedAt: null, durationMs: null, error: null };
}

/** Iterations are kept by index: binary search for its place. */
function iterationOf(block: StepStateBase, at: Extract<PathList, { kind: 'iteration' }>, ts: Date): IterationState {
  const list = (block.iterations ??= []);
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.index < at.index) lo = mid + 1;
    else hi = mid;
  }
  if (list[lo]?.index === at.index) return list[lo]!;
  // Its first row starts it: ITERATION_STARTED, or an inner step's row for an
  // iteration past the first 100 (those write rows only when they fail).
  const it: IterationState = { index: at.index, path: at.path, status: 'RUNNING', startedAt: ts, endedAt: null, error: null, steps: [] };
  list.splice(lo, 0, it);
  return it;
}

function branchOf(block: StepStateBase, at: Extract<PathList, { kind: 'branch' }>): BranchState {
  const list = (block.branches ??= []);
  let branch = list.find((b) => b.label === at.label);
  if (!branch) {
    branch = { label: at.label, path: at.path, steps: [] };
    list.push(branch);
  }
  return branch;
}

/**
 * The nested step (or, for a path that ends in a list, the iteration) a
 * parsed path names under its top-level block, added with its lists and
 * enclosing steps where missing. A path ending in a branch list names
 * nothing the reducer keeps state for: null.
 */
export function locateNested(top: StepStateBase, parsed: ParsedStepPath, ts: Date): NestedStepState | IterationState | null {
  let node: StepStateBase = top;
  for (const hop of parsed.hops) {
    const list = hop.list.kind === 'iteration' ? iterationOf(node, hop.list, ts) : branchOf(node, hop.list);
    if (!hop.step) return 'index' in list ? list : null;
    const at: PathStep = hop.step;
    let step = list.steps.find((s) => s.name === at.id);
    if (!step) {
      step = newStep(at);
      list.steps.push(step);
    }
    node = step;
  }
  return node === top ? null : (node as NestedStepState);
}
