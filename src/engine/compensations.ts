import type { StepBase } from '../model/definition.js';
import { JobAbort } from './aborts.js';
import type { ExecutorOptions } from './executor.js';
import { Frame } from './frame.js';
import type { JobRun } from './job-run.js';
import { isBlock, stepTypeOf } from './steps/registry.js';

/** A completed step whose compensation is due, with the frame it ran in (its scope, its path). */
export interface Compensation {
  frame: Frame;
  step: StepBase;
  action: StepBase;
}

const SEGMENT = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$/;

/**
 * The step a path names (`inv[17].call`, `route.then.notify`), with a frame
 * rebuilt as it ran: the outputs its list had recorded, and the item and
 * index of its loop iteration. Null when the path names a list, not a step,
 * or nothing in this definition.
 */
export function stepAtPath(run: JobRun, options: ExecutorOptions, path: string): { step: StepBase; frame: Frame } | null {
  const tokens = path.split('.');
  const abort = new JobAbort();
  let frame = Frame.top(run, options, abort);
  let list: readonly StepBase[] = run.definition.steps;
  for (let t = 0; t < tokens.length; t++) {
    const m = SEGMENT.exec(tokens[t]!);
    if (!m) return null;
    const [, id, index] = m;
    const step = list.find((s) => s.id === id);
    if (!step) return null;
    if (t === tokens.length - 1 && index === undefined) return { step, frame };
    const lists = stepTypeOf(step)?.children(step) ?? [];
    let label: string;
    let item: unknown;
    if (index !== undefined) {
      label = `[${index}]`;
      const items = run.results.get(frame.path(step.id))?.state?.items;
      item = Array.isArray(items) ? items[Number(index)] : undefined;
    } else {
      t++;
      if (t >= tokens.length) return null;
      label = tokens[t]!;
    }
    const child = lists.find((l) => l.label === (index !== undefined ? '[]' : label));
    if (!child) return null;
    frame = frame.child(step.id, label, abort, index !== undefined ? { item, index: Number(index) } : {});
    for (const s of child.steps) {
      const r = run.results.get(frame.path(s.id));
      if (r?.status === 'COMPLETED') frame.outputs[s.id] = r.output;
    }
    list = child.steps;
  }
  return null;
}

/**
 * The compensations a failed job runs, in reverse completion order: top-level
 * steps from the last one reached backwards; inside a block (the one that
 * failed midway included), its completed steps newest first, iterations and
 * branches alike. Steps that failed under continueOnError are not compensated.
 */
export function compensationsOf(run: JobRun, options: ExecutorOptions): Compensation[] {
  const out: Compensation[] = [];
  const steps = run.definition.steps;
  const top = Frame.top(run, options, new JobAbort());
  for (let i = Math.min(run.nextStep, steps.length - 1); i >= 0; i--) {
    const step = steps[i]!;
    if (isBlock(step)) {
      const inside = [...run.results.values()]
        .filter((r) => r.status === 'COMPLETED' && (r.path.startsWith(`${step.id}.`) || r.path.startsWith(`${step.id}[`)))
        .sort((a, b) => b.seq - a.seq || (a.path < b.path ? 1 : -1));
      for (const r of inside) {
        const found = stepAtPath(run, options, r.path);
        if (found?.step.compensate) out.push({ frame: found.frame, step: found.step, action: found.step.compensate.step });
      }
      continue;
    }
    if (i < run.nextStep && step.compensate && !run.failedSteps.includes(step.id)) out.push({ frame: top, step, action: step.compensate.step });
  }
  return out;
}
