import { JOB_STATUSES, INITIATOR_TYPES, LOG_LEVELS, STREAM_KINDS } from '../store/index.js';
import { DEFAULT_ITERATION_LIMIT, MAX_ITERATION_LIMIT } from '../read/timeline-page.js';

/** JSON Schemas shared by routes: request validation, response serialisation and the OpenAPI document. */
export const uuid = { type: 'string', format: 'uuid' } as const;
export const anyJson = {} as const;
const nullableString = { type: ['string', 'null'] } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
      required: ['code', 'message', 'details'],
    },
  },
  required: ['error'],
} as const;

export const idParams = {
  type: 'object',
  properties: { id: uuid },
  required: ['id'],
  additionalProperties: false,
} as const;

export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  cursor: { type: 'string', maxLength: 200 },
} as const;

/** Paging of loop iterations in a rebuilt job (the timeline and state routes). */
export const iterationQuery = {
  loop: { type: 'string', minLength: 1, maxLength: 1000, description: 'the path of the forEach that iterationOffset applies to (`inv`, `outer[3].inner`); default: every loop' },
  iterationOffset: { type: 'integer', minimum: 0, maximum: 100000, default: 0 },
  iterationLimit: { type: 'integer', minimum: 1, maximum: MAX_ITERATION_LIMIT, default: DEFAULT_ITERATION_LIMIT, description: 'iterations per loop' },
} as const;

/** `?phi=mask` on the job read routes: the PHI workflow's values masked, nothing audited (read/phi-mask.ts). */
export const phiQuery = {
  phi: {
    type: 'string',
    enum: ['mask'],
    description: "mask: a PHI workflow's protected values are replaced by \"‹masked›\" and the read is not audited (phiMasked: true says so)",
  },
} as const;

export type PhiQuery = { phi?: 'mask' };

/** Set on a response (and on each stream row) that `?phi=mask` masked. */
export const phiMaskedProperty = {
  phiMasked: { type: 'boolean', description: "true: the PHI workflow's protected values were masked (?phi=mask)" },
} as const;

export interface IterationQuery {
  loop?: string;
  iterationOffset: number;
  iterationLimit: number;
}

export const workflowSchema = {
  $id: 'Workflow',
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    description: nullableString,
    category: nullableString,
    status: { type: 'string', enum: ['ACTIVE', 'PAUSED', 'ARCHIVED', 'DRAFT'] },
    version: { type: 'integer' },
    definition: anyJson,
    maxConcurrentRuns: { type: ['integer', 'null'] },
    createdAt: dateTime,
    updatedAt: dateTime,
    archivedAt: nullableDateTime,
  },
  required: ['id', 'name', 'status', 'version', 'definition', 'createdAt', 'updatedAt'],
} as const;

export const jobSchema = {
  $id: 'Job',
  type: 'object',
  properties: {
    id: uuid,
    runNumber: { type: 'integer' },
    workflowId: uuid,
    workflowVersion: { type: 'integer' },
    clientId: { type: ['string', 'null'] },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    initiatorType: { type: 'string', enum: [...INITIATOR_TYPES] },
    retryOfJobId: { type: ['string', 'null'] },
    priority: { type: 'integer' },
    attempts: { type: 'integer' },
    idempotencyKey: nullableString,
    input: anyJson,
    result: anyJson,
    // GET /v1/jobs/:id only: set when the result was read back from blob storage (the jobs row holds a reference).
    resultStored: {
      type: ['object', 'null'],
      properties: { sizeBytes: { type: 'integer' }, storedBytes: { type: 'integer' }, sha256: { type: 'string' } },
    },
    error: {
      type: ['object', 'null'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, step: nullableString },
    },
    stepsTotal: { type: 'integer' },
    stepsCompleted: { type: 'integer' },
    createdAt: dateTime,
    startedAt: nullableDateTime,
    completedAt: nullableDateTime,
    durationMs: { type: ['integer', 'null'] },
    retryCount: { type: 'integer' },
    maxRetries: { type: 'integer' },
    maxRetriesReached: { type: 'boolean' },
    deadlineAt: nullableDateTime,
    cancelRequestedAt: nullableDateTime,
    initiatedBy: { type: ['string', 'null'], description: 'the user whose key started the run (null for schedules, webhooks and children)' },
    parentJobId: { type: ['string', 'null'], description: "a sub-workflow's child: the job whose workflow step started it" },
    parentStepPath: { type: ['string', 'null'], description: "the path of that step in the parent's workflow" },
    depth: { type: 'integer', description: 'parents above this job (0 for a run started any other way)' },
    ...phiMaskedProperty,
  },
  required: ['id', 'runNumber', 'workflowId', 'status', 'createdAt'],
} as const;

export const streamEntrySchema = {
  $id: 'StreamEntry',
  type: 'object',
  properties: {
    seq: { type: 'integer' },
    ts: dateTime,
    kind: { type: 'string', enum: Object.keys(STREAM_KINDS) },
    level: { type: 'string', enum: Object.keys(LOG_LEVELS) },
    stepIndex: { type: ['integer', 'null'] },
    message: { type: 'string' },
    data: anyJson,
    path: { type: ['string', 'null'], description: "a step inside a block: its path (`inv[17].call`); stepIndex is then the top-level block's" },
    ...phiMaskedProperty,
  },
  required: ['seq', 'ts', 'kind', 'level', 'message'],
} as const;

export const clientSchema = {
  $id: 'Client',
  type: 'object',
  properties: {
    id: uuid,
    name: { type: 'string' },
    externalId: nullableString,
    createdAt: dateTime,
  },
  required: ['id', 'name', 'createdAt'],
} as const;

/** Response map with our error body on every 4xx a route can give. */
export function responses(ok: Record<number, unknown>): Record<number, unknown> {
  const err = { $ref: 'Error#' };
  return { ...ok, 400: err, 401: err, 402: err, 403: err, 404: err, 409: err, 413: err, 429: err };
}

const nullableNumber = { type: ['number', 'null'] } as const;

/** A job in the dashboard list: the Job fields plus the names joined for the page. */
export const jobListItemSchema = {
  $id: 'JobListItem',
  type: 'object',
  properties: { ...jobSchema.properties, workflowName: nullableString, clientName: nullableString },
  required: jobSchema.required,
} as const;

const outcomeProperties = {
  total: { type: 'integer' },
  completed: { type: 'integer' },
  partialSuccess: { type: 'integer' },
  failed: { type: 'integer' },
  cancelled: { type: 'integer' },
  timedOut: { type: 'integer' },
  successRate: nullableNumber,
} as const;

const durationProperties = {
  durationCount: { type: 'integer' },
  avgDurationMs: nullableNumber,
  minDurationMs: nullableNumber,
  maxDurationMs: nullableNumber,
  p50DurationMs: nullableNumber,
  p95DurationMs: nullableNumber,
  p99DurationMs: nullableNumber,
} as const;

export const workflowStatsSchema = {
  $id: 'WorkflowStats',
  type: 'object',
  properties: { workflowId: uuid, workflowName: { type: 'string' }, ...outcomeProperties, ...durationProperties },
  required: ['workflowId', 'workflowName', 'total'],
} as const;

export const durationStatsSchema = {
  $id: 'DurationStats',
  type: 'object',
  properties: {
    ...outcomeProperties,
    ...durationProperties,
    histogram: {
      type: 'array',
      description: 'runs per duration bin (bins ≈ 1.95× wide, non-empty only, shortest first), from the same merged histogram as the percentiles',
      items: {
        type: 'object',
        properties: { fromMs: { type: 'number' }, toMs: { type: 'number' }, count: { type: 'integer' } },
        required: ['fromMs', 'toMs', 'count'],
      },
    },
  },
  required: ['total', 'durationCount'],
} as const;

export const timeSeriesPointSchema = {
  $id: 'TimeSeriesPoint',
  type: 'object',
  properties: { periodStart: dateTime, ...outcomeProperties, avgDurationMs: nullableNumber, p95DurationMs: nullableNumber },
  required: ['periodStart', 'total'],
} as const;

export const stepStatsSchema = {
  $id: 'StepStats',
  type: 'object',
  properties: {
    stepIndex: { type: 'integer', description: "the top-level step, or for a step inside a block that block's" },
    stepPath: {
      type: ['string', 'null'],
      description:
        "a step inside a block: its path with loop indexes left out (`inv[].call` counts the loop's runs of `call`, every iteration included); null for a top-level step",
    },
    stepName: nullableString,
    executions: { type: 'integer' },
    successes: { type: 'integer' },
    failures: { type: 'integer' },
    avgDurationMs: nullableNumber,
    p50DurationMs: nullableNumber,
    p95DurationMs: nullableNumber,
    topErrors: {
      type: 'array',
      items: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' }, count: { type: 'integer' } } },
    },
  },
  required: ['stepIndex', 'executions', 'successes', 'failures'],
} as const;

const stepErrorSchema = {
  type: ['object', 'null'],
  properties: { code: { type: 'string' }, message: { type: 'string' }, path: { type: 'string', description: "a block's failure: the inner step that failed" } },
} as const;

const iterationPageSchema = {
  type: 'object',
  description:
    "Where this page of the loop's iterations lies. Iterations from index 100 on write rows only when they fail; the others are counted in progress and succeededWithoutRows.",
  properties: {
    offset: { type: 'integer' },
    limit: { type: 'integer' },
    recorded: { type: 'integer', description: 'iterations that wrote rows (pages are cut from these, by index)' },
    total: { type: ['integer', 'null'], description: "the loop's items, when the stream says" },
    hasMore: { type: 'boolean' },
    nextOffset: { type: ['integer', 'null'] },
    succeededWithoutRows: { type: 'integer' },
  },
  required: ['offset', 'limit', 'recorded', 'total', 'hasMore', 'nextOffset', 'succeededWithoutRows'],
} as const;

/** A step's own state and, for a block, its inner steps (nested steps are NestedStepState, recursively). */
const stepStateProperties = {
  status: { type: 'string', enum: ['RUNNING', 'RETRYING', 'WAITING', 'COMPLETED', 'FAILED'] },
  attempts: { type: 'integer' },
  startedAt: nullableDateTime,
  endedAt: nullableDateTime,
  durationMs: nullableNumber,
  error: stepErrorSchema,
  output: anyJson,
  compensated: { type: 'boolean' },
  branch: { type: ['string', 'integer'], description: 'if / switch: the branch taken' },
  branches: {
    type: 'array',
    description: 'if / switch / parallel: the lists that ran',
    items: {
      type: 'object',
      properties: { label: { type: 'string' }, path: { type: 'string' }, steps: { type: 'array', items: { $ref: 'NestedStepState#' } } },
      required: ['label', 'path', 'steps'],
    },
  },
  iterations: {
    type: 'array',
    description: 'forEach: a page of the iterations that wrote rows, by index (see iterationPage)',
    items: {
      type: 'object',
      properties: {
        index: { type: 'integer' },
        path: { type: 'string' },
        status: { type: 'string', enum: ['RUNNING', 'COMPLETED', 'FAILED'] },
        startedAt: nullableDateTime,
        endedAt: nullableDateTime,
        error: stepErrorSchema,
        steps: { type: 'array', items: { $ref: 'NestedStepState#' } },
      },
      required: ['index', 'path', 'status', 'steps'],
    },
  },
  iterationPage: iterationPageSchema,
  progress: {
    type: 'object',
    description: 'forEach over more than 100 items: its last MAP_PROGRESS rollup',
    properties: { total: { type: 'integer' }, succeeded: { type: 'integer' }, failed: { type: 'integer' }, running: { type: 'integer' } },
  },
  childJob: {
    type: 'object',
    description: 'workflow: the child job it started',
    properties: { jobId: uuid, runNumber: { type: ['integer', 'null'] }, workflowId: { type: ['string', 'null'] }, status: nullableString },
  },
} as const;

export const stepStateSchema = {
  $id: 'StepState',
  type: 'object',
  properties: {
    index: { type: 'integer' },
    name: nullableString,
    ...stepStateProperties,
  },
  required: ['index', 'status', 'attempts'],
} as const;

export const nestedStepStateSchema = {
  $id: 'NestedStepState',
  type: 'object',
  properties: {
    path: { type: 'string', description: 'inv[17].call' },
    name: { type: 'string', description: 'the step id' },
    ...stepStateProperties,
  },
  required: ['path', 'name', 'status', 'attempts'],
} as const;

export const jobStateSchema = {
  $id: 'JobState',
  type: 'object',
  properties: {
    atSeq: { type: 'integer' },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    currentStep: { type: ['integer', 'null'] },
    currentPath: { type: ['string', 'null'], description: 'the step inside a block that last started, waits or retries, while it does' },
    startedAt: nullableDateTime,
    endedAt: nullableDateTime,
    retryCount: { type: 'integer' },
    error: stepErrorSchema,
    steps: { type: 'array', items: { $ref: 'StepState#' } },
    ...phiMaskedProperty,
  },
  required: ['atSeq', 'status', 'steps'],
} as const;

/** A bulk action on jobs (POST /v1/jobs/bulk, GET /v1/operations): its progress and the jobs it was refused for. */
export const operationSchema = {
  $id: 'Operation',
  type: 'object',
  properties: {
    id: uuid,
    action: { type: 'string', enum: ['cancel', 'retry'] },
    from: { type: ['string', 'null'], enum: ['failed-step', 'start', null], description: "a retry's starting point; null for a cancel" },
    status: { type: 'string', enum: ['RUNNING', 'COMPLETED', 'FAILED'], description: 'FAILED: its chunks kept failing (lastError); what was done stays done' },
    total: {
      type: 'integer',
      description: 'jobs chosen when it was created; for a filter, set to done when it completes (jobs that stopped matching before they were reached are not counted)',
    },
    done: { type: 'integer', description: 'succeeded + failed' },
    succeeded: { type: 'integer' },
    failed: { type: 'integer' },
    errors: {
      type: 'array',
      maxItems: 50,
      description: 'the first 50 refusals: NOT_FOUND (no such job in this organization), ALREADY_FINISHED (cancel), NOT_RETRYABLE, NO_CHECKPOINT (retry from the failed step), or the error code',
      items: { type: 'object', properties: { jobId: uuid, code: { type: 'string' }, message: { type: 'string' } }, required: ['jobId', 'code', 'message'] },
    },
    createdBy: { type: 'string', description: "'user:<id>' or 'key:<api key id>'" },
    lastError: { ...nullableString, description: 'why the last chunk failed (it is tried again; the operation FAILS after 5 in a row)' },
    createdAt: dateTime,
    updatedAt: dateTime,
    finishedAt: nullableDateTime,
  },
  required: ['id', 'action', 'from', 'status', 'total', 'done', 'succeeded', 'failed', 'errors', 'createdAt', 'finishedAt'],
} as const;
