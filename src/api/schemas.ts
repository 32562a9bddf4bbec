import { JOB_STATUSES, INITIATOR_TYPES, LOG_LEVELS, STREAM_KINDS } from '../store/index.js';

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
  properties: { ...outcomeProperties, ...durationProperties },
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
    stepIndex: { type: 'integer' },
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

const stepErrorSchema = { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } } } as const;

export const stepStateSchema = {
  $id: 'StepState',
  type: 'object',
  properties: {
    index: { type: 'integer' },
    name: nullableString,
    status: { type: 'string', enum: ['RUNNING', 'RETRYING', 'WAITING', 'COMPLETED', 'FAILED'] },
    attempts: { type: 'integer' },
    startedAt: nullableDateTime,
    endedAt: nullableDateTime,
    durationMs: nullableNumber,
    error: stepErrorSchema,
    output: anyJson,
    compensated: { type: 'boolean' },
  },
  required: ['index', 'status', 'attempts'],
} as const;

export const jobStateSchema = {
  $id: 'JobState',
  type: 'object',
  properties: {
    atSeq: { type: 'integer' },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    currentStep: { type: ['integer', 'null'] },
    startedAt: nullableDateTime,
    endedAt: nullableDateTime,
    retryCount: { type: 'integer' },
    error: stepErrorSchema,
    steps: { type: 'array', items: { $ref: 'StepState#' } },
  },
  required: ['atSeq', 'status', 'steps'],
} as const;
