import type { Db } from '../db/index.js';
import { ConflictError } from '../errors/index.js';
import { enqueueJobs, findChildJob, findDefinitions, findJob, findWorkflow, versionKey, type Job } from '../store/index.js';
import { jsonByteLength } from '../util/json.js';
import type { ChildJob, ChildJobRequest, ChildJobService } from './services.js';
import { jobSettings, MAX_INPUT_BYTES } from './service.js';
import { StepError } from './steps/types.js';

function childView(job: Pick<Job, 'id' | 'runNumber' | 'status' | 'result' | 'errorCode' | 'errorMessage'>): ChildJob {
  return { jobId: job.id, runNumber: job.runNumber, status: job.status, result: job.result, errorCode: job.errorCode, errorMessage: job.errorMessage };
}

/**
 * Sub-workflows over the database: a child is a real job of the same
 * organization (initiator PARENT, linked by parent job and step path, one
 * level deeper), started through the same enqueue as any run (plan limits
 * included). One child per (parent job, step path): the unique index on
 * those columns makes a second start — a parent taken over, or retried —
 * find the first child instead.
 */
export function childJobService(db: Db): ChildJobService {
  return {
    async start(request: ChildJobRequest) {
      const { organizationId, parentJobId, parentStepPath } = request;
      const existing = await findChildJob(db, organizationId, parentJobId, parentStepPath);
      if (existing) return { ...childView(existing), created: false };
      const workflow = await findWorkflow(db, organizationId, request.workflowId);
      if (!workflow || workflow.deletedAt) {
        throw new StepError('CHILD_WORKFLOW_NOT_FOUND', `workflow ${request.workflowId} does not exist in this organization`, { workflowId: request.workflowId });
      }
      if (workflow.status !== 'ACTIVE') {
        throw new StepError('CHILD_WORKFLOW_NOT_ACTIVE', `workflow ${request.workflowId} is ${workflow.status}; only ACTIVE workflows can run`, {
          workflowId: request.workflowId,
          status: workflow.status,
        });
      }
      const version = request.version === 'current' ? workflow.version : request.version;
      const definition =
        version === workflow.version
          ? workflow.definition
          : (await findDefinitions(db, [{ organizationId, workflowId: workflow.id, version }])).get(versionKey(workflow.id, version));
      if (!definition) {
        throw new StepError('CHILD_WORKFLOW_NOT_FOUND', `workflow ${request.workflowId} has no version ${version}`, { workflowId: request.workflowId, version });
      }
      const bytes = jsonByteLength(request.input);
      if (bytes > MAX_INPUT_BYTES) {
        throw new StepError('CHILD_INPUT_TOO_LARGE', `the child's input is ${bytes} bytes of JSON, more than ${MAX_INPUT_BYTES}`, { bytes, limit: MAX_INPUT_BYTES });
      }
      try {
        const [child] = await db.transaction((tx) =>
          enqueueJobs(tx, organizationId, jobSettings(workflow.id, version, definition), [
            { input: request.input, initiatorType: 'PARENT', parent: { jobId: parentJobId, stepPath: parentStepPath, depth: request.parentDepth + 1 } },
          ]),
        );
        return { jobId: child!.id, runNumber: child!.runNumber, status: child!.status, result: null, errorCode: null, errorMessage: null, created: true };
      } catch (err) {
        // Two runs of the parent's step raced (a takeover): the loser finds the winner's child.
        if (err instanceof ConflictError && String(err.details.constraint ?? '').includes('jobs_parent_step_idx')) {
          const raced = await findChildJob(db, organizationId, parentJobId, parentStepPath);
          if (raced) return { ...childView(raced), created: false };
        }
        throw err;
      }
    },
    async find(organizationId, jobId) {
      const job = await findJob(db, organizationId, jobId);
      return job ? childView(job) : null;
    },
  };
}
