import type { StepBase } from '../../model/definition.js';
import { SUCCESSFUL_STATUSES, TERMINAL_STATUSES } from '../../store/jobs.js';
import { renderTemplates } from '../definition/expressions.js';
import { noChildren, noDirectCredentials, noExtraChecks, StepError, Suspend, stepTimeout, type StepType } from './types.js';

/** Workflows calling workflows stop at this depth (a job started by a step of a job started by a step …). */
export const MAX_WORKFLOW_DEPTH = 3;

/**
 * Starts another workflow as a child job (its own stream and run number,
 * initiator PARENT, linked to this job and step) and, with `wait` (the
 * default), waits for it without holding a worker. Output: the child's
 * result, or `{ jobId }` at once with `"wait": false`. A failed child fails
 * the step with CHILD_JOB_FAILED. The child is started once per job and
 * step path, however often the step runs (a takeover, a job-level retry).
 */
export interface WorkflowStep extends StepBase {
  type: 'workflow';
  workflowId: string;
  /** A pinned version, or "current" (the default): the workflow's version when the child starts. */
  version?: number | 'current';
  /** The child's input; strings may hold `{{ }}` templates. */
  input?: unknown;
  wait?: boolean;
}

export const workflowStep: StepType<WorkflowStep> = {
  type: 'workflow',
  properties: {
    workflowId: { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' },
    version: { anyOf: [{ const: 'current' }, { type: 'integer', minimum: 1 }] },
    input: {},
    wait: { type: 'boolean' },
  },
  required: ['workflowId'],
  sources: (step) => ({ templates: { input: step.input ?? null } }),
  validate: noExtraChecks,
  credentials: noDirectCredentials,
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  // Starting the child is idempotent by (job, step path), so it needs no commit before it.
  sideEffects: false,
  abortable: false,
  compensation: false,
  async run(step, ctx) {
    const children = ctx.services.children;
    if (!children) throw new StepError('SERVICE_UNAVAILABLE', 'this worker cannot start sub-workflows');
    const { organizationId } = ctx.job;
    const started = ctx.resumed?.childJobId;
    if (typeof started !== 'string') {
      if (ctx.job.depth + 1 > MAX_WORKFLOW_DEPTH) {
        throw new StepError('WORKFLOW_DEPTH_EXCEEDED', `sub-workflows nest at most ${MAX_WORKFLOW_DEPTH} deep; this job is at depth ${ctx.job.depth}`, {
          depth: ctx.job.depth,
          limit: MAX_WORKFLOW_DEPTH,
        });
      }
      const input = await renderTemplates(step.input ?? null, ctx.scope, `steps.${step.id}.input`);
      const child = await children.start({
        organizationId,
        parentJobId: ctx.job.id,
        parentStepPath: ctx.path,
        parentDepth: ctx.job.depth,
        workflowId: step.workflowId,
        version: step.version ?? 'current',
        input,
      });
      ctx.event('CHILD_JOB_STARTED', `run ${child.runNumber}`, { jobId: child.jobId, runNumber: child.runNumber, workflowId: step.workflowId });
      if (step.wait === false) return { jobId: child.jobId };
      return new Suspend(null, { childJobId: child.jobId }, { childJobId: child.jobId });
    }
    const child = await children.find(organizationId, started);
    if (!child) throw new StepError('CHILD_JOB_MISSING', `child job ${started} no longer exists`, { childJobId: started });
    // Woken early (or by something else): wait on.
    if (!TERMINAL_STATUSES.includes(child.status)) return new Suspend(null, { childJobId: started });
    ctx.event('CHILD_JOB_COMPLETED', `run ${child.runNumber} ${child.status}`, { jobId: child.jobId, status: child.status });
    if (SUCCESSFUL_STATUSES.includes(child.status)) return child.result ?? null;
    throw new StepError('CHILD_JOB_FAILED', `child job ${child.jobId} ended ${child.status}${child.errorMessage ? `: ${child.errorMessage}` : ''}`, {
      childJobId: child.jobId,
      status: child.status,
      ...(child.errorCode ? { childCode: child.errorCode } : {}),
    });
  },
};
