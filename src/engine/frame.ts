import type { LogLevel, StreamKind } from '../store/index.js';
import { preciseNow } from '../util/clock.js';
import type { JobAbort } from './aborts.js';
import type { ExecutorOptions } from './executor.js';
import { prepareRow, type HeldRow, type JobRun } from './job-run.js';
import type { StepScope } from './steps/types.js';

/**
 * Where a step list runs: the job, the path of the list inside its blocks,
 * what its expressions see, and the abort that stops it. The top-level list
 * has the empty prefix and writes rows without a path; a list inside a
 * block (`inv[17].`, `route.then.`) writes every row with its step's path
 * and the top-level index of the block that holds it.
 */
export class Frame {
  /** This list's own step outputs (the top-level frame shares the run's). */
  readonly outputs: Record<string, unknown>;
  /** Rows of a quiet list, held back until it fails (or dropped when it does not); lists inside share their quiet ancestor's. */
  private readonly held: HeldRow[] | null;
  private readonly ownsHeld: boolean;

  constructor(
    readonly run: JobRun,
    readonly options: ExecutorOptions,
    readonly abort: JobAbort,
    /** `''` at the top level; `inv[17].` inside. */
    readonly prefix: string,
    /** The top-level index of the block this list is in (null at the top level: each step has its own). */
    private readonly blockIndex: number | null,
    /** Outputs of the enclosing lists, innermost last merged in (null at the top level). */
    private readonly outer: Record<string, unknown> | null,
    /** `item` and `index` of the innermost enclosing loop iteration. */
    private readonly iteration: { item: unknown; index: number } | null,
    /** A quiet ancestor's held rows, `[]` to start holding here, null when not quiet. */
    held: HeldRow[] | null,
    /** Blocks enclosing this list. */
    readonly depth: number,
    parentHeld: HeldRow[] | null = null,
    /** Pulled: the list ends before its next step (see BlockHost.run). */
    readonly stop: JobAbort | null = null,
  ) {
    this.outputs = outer === null ? run.outputs : {};
    this.held = parentHeld ?? held;
    this.ownsHeld = parentHeld === null && held !== null;
  }

  /** The frame of a job's top-level steps. */
  static top(run: JobRun, options: ExecutorOptions, abort: JobAbort): Frame {
    return new Frame(run, options, abort, '', null, null, null, null, 0);
  }

  /** A step's path: its id at the top level, `inv[17].call` inside blocks. */
  path(stepId: string): string {
    return this.prefix + stepId;
  }

  get nested(): boolean {
    return this.outer !== null;
  }

  /** The stream's step_index of a step of this list: its own index at the top level, its block's inside. */
  stepIndex(stepId: string): number | null {
    return this.blockIndex ?? this.run.topIndex(stepId);
  }

  /** What expressions see: `{ input, steps }` with the innermost list's outputs first, and `item`/`index` in a loop. */
  scope(): StepScope & { item?: unknown; index?: number } {
    const steps = this.outer === null ? this.outputs : { ...this.outer, ...this.outputs };
    const scope: StepScope & { item?: unknown; index?: number } = { input: this.run.job.input ?? null, steps };
    if (this.iteration) {
      scope.item = this.iteration.item;
      scope.index = this.iteration.index;
    }
    return scope;
  }

  /** The frame of a list inside block `blockId` of this list, labelled `then`, `crm` or `[17]`. */
  child(blockId: string, label: string, abort: JobAbort, options: { item?: unknown; index?: number; quiet?: boolean; stop?: JobAbort | undefined }): Frame {
    const outer = this.outer === null ? { ...this.outputs } : { ...this.outer, ...this.outputs };
    const iteration = options.index !== undefined ? { item: options.item ?? null, index: options.index } : this.iteration;
    return new Frame(
      this.run,
      this.options,
      abort,
      `${sequencePath(this.path(blockId), label)}.`,
      this.blockIndex ?? this.run.topIndex(blockId),
      outer,
      iteration,
      options.quiet === true ? [] : null,
      this.depth + 1,
      this.held,
      options.stop ?? this.stop,
    );
  }

  /** Append a row for step `stepId` of this list (held back while the list is quiet). Returns its seq, or 0 when held. */
  emit(stepId: string | null, kind: StreamKind, level: LogLevel, message: string, data?: unknown, path?: string): number {
    const stepIndex = stepId === null ? this.blockIndex : this.stepIndex(stepId);
    const rowPath = path ?? (this.nested && stepId !== null ? this.path(stepId) : null);
    if (this.held) {
      this.held.push(prepareRow(kind, level, stepIndex, message, data, rowPath, preciseNow()));
      return 0;
    }
    return this.run.emit(kind, level, stepIndex, message, data, rowPath);
  }

  /** A quiet list ended without failing: its held rows are dropped, its step results only counted. */
  discard(): void {
    if (!this.held || !this.ownsHeld) return;
    this.run.countHeld(this.held.splice(0));
  }

  /** A quiet list failed: its held rows go to the stream after all, in order (by the list that started holding). */
  release(): void {
    if (!this.held || !this.ownsHeld) return;
    this.run.emitHeld(this.held.splice(0));
  }
}

/** The path of a list inside a block: `inv[17]` for an iteration, `route.then` for a branch. */
export function sequencePath(blockPath: string, label: string): string {
  return label.startsWith('[') ? `${blockPath}${label}` : `${blockPath}.${label}`;
}
