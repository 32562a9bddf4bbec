/** API shapes the workflow pages read (src/api/schemas.ts, routes/workflows.ts, schedules.ts, webhooks.ts). */

export interface Workflow {
  id: string;
  name: string;
  description: string | null;
  category: string | null;
  status: 'ACTIVE' | 'PAUSED' | 'ARCHIVED' | 'DRAFT';
  version: number;
  definition: unknown;
  maxConcurrentRuns: number | null;
  createdAt: string;
  updatedAt: string;
  archivedAt: string | null;
}

/** GET /v1/workflows/:id/versions/:version (contracts.md, Changes, atlas-admin). */
export interface WorkflowVersion {
  workflowId: string;
  version: number;
  definition: unknown;
  /** Null for the current version when it came with the workflow (its own time is not in that answer). */
  createdAt: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Schedule {
  id: string;
  workflowId: string;
  name: string;
  cron: string;
  timezone: string;
  input: unknown;
  enabled: boolean;
  misfirePolicy: 'SKIP' | 'RUN_ONCE';
  nextFireAt: string | null;
  lastFiredAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookState {
  enabled: boolean;
  createdAt: string | null;
  rotatedAt: string | null;
}

export interface WebhookIssued {
  url: string;
  secret: string;
}

export interface RunAccepted {
  jobId: string;
  runNumber: number;
  status: string;
}

/** The fields of a JobListItem these pages show. */
export interface JobRow {
  id: string;
  runNumber: number;
  status: string;
  initiatorType: string;
  createdAt: string;
  durationMs: number | null;
  workflowVersion?: number;
  error?: { code: string; message: string } | null;
}

/** A row of GET /v1/analytics/workflows. */
export interface WorkflowStats {
  workflowId: string;
  workflowName: string;
  total: number;
  completed: number;
  failed: number;
  successRate: number | null;
}
