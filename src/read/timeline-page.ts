import type { JobState, StepState, StepStateBase } from './job-state.js';

/**
 * Paging of loop iterations in a rebuilt job state (read/job-state.ts): a
 * forEach may hold thousands of iterations, so the timeline and the state
 * routes show a page of each loop's and say where the rest is. Pure, like
 * the reducer.
 */

/** Iterations per loop in one answer unless the caller asks otherwise. */
export const DEFAULT_ITERATION_LIMIT = 50;
/** At most this many iterations per loop in one answer. */
export const MAX_ITERATION_LIMIT = 500;

/** Which iterations to show. */
export interface IterationPaging {
  /** The path of the loop that `offset` applies to (`inv`, `outer[3].inner`); absent: every loop. Other loops start at 0. */
  loop?: string | undefined;
  offset: number;
  limit: number;
}

/** Where a loop's page of iterations lies among its iterations. */
export interface IterationPage {
  offset: number;
  limit: number;
  /** Iterations that wrote rows (the ones pages are cut from, by index). */
  recorded: number;
  /** The loop's items, when the stream says: its MAP_PROGRESS rollup, or the iterations recorded once the loop completed. */
  total: number | null;
  hasMore: boolean;
  /** The offset of the next page (null on the last). */
  nextOffset: number | null;
  /**
   * Iterations that succeeded without writing rows: past the first 100, an
   * iteration writes rows only when it fails, and the loop's progress
   * counts stand for the others (0 without a MAP_PROGRESS rollup).
   */
  succeededWithoutRows: number;
}

/** A step as the routes show it: a loop's iterations cut to a page, described by iterationPage. */
export type PagedStep<S extends StepStateBase> = S & { iterationPage?: IterationPage };

function pageBlock<S extends StepStateBase>(step: S, path: string, paging: IterationPaging): PagedStep<S> {
  if (!step.branches && !step.iterations && !step.progress) return step;
  const out: PagedStep<S> = { ...step };
  if (step.branches) {
    out.branches = step.branches.map((b) => ({ ...b, steps: b.steps.map((s) => pageBlock(s, s.path, paging)) }));
  }
  if (step.iterations || step.progress) {
    const all = step.iterations ?? [];
    const offset = paging.loop === undefined || paging.loop === path ? paging.offset : 0;
    const page = all.slice(offset, offset + paging.limit);
    const more = offset + page.length < all.length;
    const completed = all.reduce((n, it) => n + (it.status === 'COMPLETED' ? 1 : 0), 0);
    out.iterations = page.map((it) => ({ ...it, steps: it.steps.map((s) => pageBlock(s, s.path, paging)) }));
    out.iterationPage = {
      offset,
      limit: paging.limit,
      recorded: all.length,
      total: step.progress?.total ?? (step.status === 'COMPLETED' ? all.length : null),
      hasMore: more,
      nextOffset: more ? offset + page.length : null,
      succeededWithoutRows: step.progress ? Math.max(0, step.progress.succeeded - completed) : 0,
    };
  }
  return out;
}

/** The top-level steps with every loop's iterations cut to a page (steps without loops are returned as they are). */
export function pageSteps(steps: readonly StepState[], paging: IterationPaging): PagedStep<StepState>[] {
  return steps.map((s) => pageBlock(s, s.name ?? '', paging));
}

/** A job state with every loop's iterations cut to a page. */
export function pageJobState(state: JobState, paging: IterationPaging): Omit<JobState, 'steps'> & { steps: PagedStep<StepState>[] } {
  return { ...state, steps: pageSteps(state.steps, paging) };
}
