import { createHash } from 'node:crypto';
import { ValidationError } from '../errors/index.js';
import type { WorkflowDefinition } from '../model/definition.js';
import type { NewJob, RunFlowKeys, RunFlowPlan } from '../store/index.js';
import { compileExpression, evaluate, ExpressionError } from './definition/expressions.js';

/** The queue's priority column is a smallint; a priority expression's value is clamped to ±this. */
export const MAX_PRIORITY = 32_767;

/**
 * Runs that never dedupe or debounce: a retry (the caller asked for another
 * run of a job) and a sub-workflow's child (its parent waits for its own
 * child). They still carry concurrency keys and priority.
 */
const EXEMPT_INITIATORS = new Set<NewJob['initiatorType']>(['RETRY', 'PARENT']);

/** A key's value as text: strings as they are, anything else as JSON; null and undefined: no key. */
function keyText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function digest(parts: readonly string[]): Buffer {
  return createHash('sha256').update(parts.join('\u0000')).digest();
}

/** 64-bit concurrency key (decimal text of a signed bigint). */
function concurrencyKey(parts: readonly string[]): string {
  return digest(parts).readBigInt64BE(0).toString();
}

/** 128-bit key as uuid text (dedupe and debounce rows are keyed by it). */
function uuidKey(parts: readonly string[]): string {
  const h = digest(parts).subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

async function evaluateAt(text: string, rule: string, input: unknown, path: string): Promise<unknown> {
  try {
    return await evaluate(compileExpression(text, rule), { input });
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    throw new ValidationError(`${path}: ${rule} could not be evaluated for this input: ${err.message}`, { path, expression: rule });
  }
}

/**
 * The flow control of a workflow version as the enqueue applies it
 * (store/flow-enqueue.ts), or undefined when the definition declares none,
 * so such runs are enqueued exactly as before. Keys are evaluated against
 * `{ input }` when the run starts. A key is scoped to the workflow and its
 * expression: two versions with the same rule share keys.
 *
 * Priority: the definition's expression means "lower first" (1 before 3).
 * The queue orders "higher first" (the API's `priority` field), so a value v
 * is stored as -v; an explicit `priority` on the start request wins over
 * the expression.
 */
export function runFlowOf(workflowId: string, definition: WorkflowDefinition): RunFlowPlan | undefined {
  const { concurrency, dedupe, debounce, priority } = definition;
  if (!concurrency?.length && !dedupe && !debounce && priority === undefined) return undefined;
  return {
    dedupe: dedupe ? { ttlMs: dedupe.ttlMs } : undefined,
    debounce: debounce ? { delayMs: debounce.delayMs, maxDelayMs: debounce.maxDelayMs } : undefined,
    async keysOf(job: NewJob, path: string): Promise<RunFlowKeys> {
      const input = job.input;
      const keys: RunFlowKeys = { concurrency: [] };
      for (const [i, rule] of (concurrency ?? []).entries()) {
        const value = keyText(await evaluateAt(rule.key, `/definition/concurrency/${i}/key`, input, path));
        if (value !== undefined) keys.concurrency.push({ key: concurrencyKey(['concurrency', workflowId, rule.key, value]), limit: rule.limit });
      }
      if (priority !== undefined && job.priority === undefined) {
        const value = await evaluateAt(priority, '/definition/priority', input, path);
        if (value !== undefined && value !== null) {
          if (typeof value !== 'number' || !Number.isFinite(value)) {
            throw new ValidationError(`${path}: /definition/priority gave ${JSON.stringify(value)} for this input; it must give a number`, {
              path,
              expression: '/definition/priority',
            });
          }
          const clamped = Math.max(-MAX_PRIORITY, Math.min(MAX_PRIORITY, Math.round(value)));
          keys.priority = clamped === 0 ? 0 : -clamped;
        }
      }
      if (!EXEMPT_INITIATORS.has(job.initiatorType)) {
        if (dedupe) {
          const value = keyText(await evaluateAt(dedupe.key, '/definition/dedupe/key', input, path));
          if (value !== undefined) keys.dedupeKey = uuidKey(['dedupe', workflowId, dedupe.key, value]);
        }
        if (debounce) {
          const value = keyText(await evaluateAt(debounce.key, '/definition/debounce/key', input, path));
          if (value !== undefined) keys.debounceKey = uuidKey(['debounce', workflowId, debounce.key, value]);
        }
      }
      return keys;
    },
  };
}
