import type { StepBase } from '../../model/definition.js';
import { KNOWLEDGE_LIMITS } from '../../model/knowledge.js';
import { truncate } from '../../util/json.js';
import { renderString, renderTemplates } from '../definition/expressions.js';
import { noChildren, noDirectCredentials, noExtraChecks, StepError, stepTimeout, type StepType } from './types.js';

/**
 * Marks documents the job retrieved as used (the rules a decision rested
 * on): by external id or document id, among every retrieval of the job or
 * only the one of the retrieve step `retrieval` names. A document keeps its
 * first mark; running the step again changes nothing. Output:
 * `{ marked, unknown }`: how many retrieved documents matched (marked now
 * or before), and the names that matched none.
 */
export interface MarkUsedStep extends StepBase {
  type: 'markUsed';
  /** A template rendering to an array of ids (`{{ steps.decide.rules }}`), one id, or an array of templates. */
  documents: string | string[];
  /** The id of a retrieve step, found from this step's list outwards (as expressions see step outputs). */
  retrieval?: string;
  /** Why they were used (a template), kept with each mark. */
  reason?: string;
}

export const markUsedStep: StepType<MarkUsedStep> = {
  type: 'markUsed',
  properties: {
    documents: {
      anyOf: [
        { type: 'string', minLength: 1, maxLength: 2_000 },
        { type: 'array', minItems: 1, maxItems: KNOWLEDGE_LIMITS.markNames, items: { type: 'string', minLength: 1, maxLength: 2_000 } },
      ],
    },
    // A step id (definition/schema.ts STEP_ID_PATTERN, which imports the registry: not importable from a step type).
    retrieval: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
    reason: { type: 'string', minLength: 1, maxLength: 2_000 },
  },
  required: ['documents'],
  sources: (step) => ({ templates: { documents: step.documents, ...(step.reason !== undefined ? { reason: step.reason } : {}) } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  // It writes only Stepwise's own record, and a second run finds every mark already made.
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const knowledge = ctx.services.knowledge;
    if (!knowledge) throw new StepError('SERVICE_UNAVAILABLE', 'this worker cannot mark documents used (no knowledge service)');
    const names = documentNames(await renderTemplates(step.documents, ctx.scope, `steps.${step.id}.documents`));
    const reason = step.reason === undefined ? null : truncate(await renderString(step.reason, ctx.scope, `steps.${step.id}.reason`), KNOWLEDGE_LIMITS.reasonChars);
    const retrievalPaths = step.retrieval === undefined ? undefined : candidatePaths(ctx.path, step.id, step.retrieval);
    const result = await knowledge.markUsed({
      organizationId: ctx.job.organizationId,
      jobId: ctx.job.id,
      usedByPath: ctx.path,
      retrievalPath: retrievalPaths?.[0] ?? null,
      ...(retrievalPaths ? { retrievalPaths } : {}),
      documents: names,
      reason,
    });
    if (step.retrieval !== undefined && result.retrievals === 0) {
      throw new StepError('RETRIEVAL_NOT_FOUND', `this job has no retrieval of a step "${step.retrieval}" in this list or the lists around it`, {
        retrieval: step.retrieval,
        looked: retrievalPaths,
      });
    }
    ctx.event('DOCUMENTS_USED', `${result.marked} document${result.marked === 1 ? '' : 's'} used`, {
      marked: result.marked,
      unknown: result.unknown.length,
      ...(step.retrieval !== undefined ? { retrieval: step.retrieval } : {}),
    });
    return { marked: result.marked, unknown: result.unknown };
  },
};

/** The rendered `documents`: ids as strings (numbers accepted), none for null or an empty string. */
export function documentNames(rendered: unknown): string[] {
  const values = Array.isArray(rendered) ? rendered.flat() : [rendered];
  const names: string[] = [];
  for (const [i, v] of values.entries()) {
    if (v === null || v === undefined || v === '') continue;
    if (typeof v === 'number' && Number.isFinite(v)) names.push(String(v));
    else if (typeof v === 'string' && v.length <= KNOWLEDGE_LIMITS.externalIdChars) names.push(v);
    else {
      throw new StepError('MARK_USED_INVALID_DOCUMENTS', `documents[${i}] is not a document id (a string of at most ${KNOWLEDGE_LIMITS.externalIdChars} characters)`, {
        index: i,
        limit: KNOWLEDGE_LIMITS.externalIdChars,
      });
    }
  }
  const unique = [...new Set(names)];
  if (unique.length > KNOWLEDGE_LIMITS.markNames) {
    throw new StepError('MARK_USED_INVALID_DOCUMENTS', `documents names ${unique.length} ids; the limit is ${KNOWLEDGE_LIMITS.markNames}`, {
      count: unique.length,
      limit: KNOWLEDGE_LIMITS.markNames,
    });
  }
  return unique;
}

/**
 * Where a retrieve step named `retrieval` may be, seen from the step at
 * `path` (whose id is `id`): in its own list first, then in each list
 * around it out to the top level, as expressions see step outputs. A path
 * inside blocks is `<block>[<n>].<id>` (a loop iteration) or
 * `<block>.<label>.<id>` (a branch): `outer[3].inner.then.mark` gives
 * `outer[3].inner.then.r`, `outer[3].r`, `r`.
 */
export function candidatePaths(path: string, id: string, retrieval: string): string[] {
  const prefix = path.slice(0, path.length - id.length);
  // The parts of the prefix alternate block id and list (a label, or `[n]` glued to its block id).
  const parts: string[] = [];
  for (const token of prefix.split('.').filter((t) => t !== '')) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(token);
    if (!m) return [prefix + retrieval];
    parts.push(m[1]!);
    for (const index of m[2]!.match(/\[\d+\]/g) ?? []) parts.push(index);
  }
  const out: string[] = [];
  for (let n = parts.length; n >= 0; n -= 2) {
    let p = '';
    for (let i = 0; i < n; i++) p += parts[i]!.startsWith('[') ? parts[i] : `${i > 0 ? '.' : ''}${parts[i]}`;
    out.push(n === 0 ? retrieval : `${p}.${retrieval}`);
  }
  return out;
}
