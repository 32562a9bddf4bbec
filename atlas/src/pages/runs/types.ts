import type { RunItem } from '../../view/run-list.js';

/** GET /v1/jobs items and /v1/events `job` data (the JobListItem schema). */
export interface JobListItem extends RunItem {
  workflowVersion?: number;
  initiatorType: string;
  initiatedBy?: string | null;
  retryOfJobId?: string | null;
  parentJobId?: string | null;
  stepsTotal?: number;
  stepsCompleted?: number;
  attempts?: number;
  retryCount?: number;
}

export interface JobPage {
  items: JobListItem[];
  nextCursor: string | null;
}

export interface JobCount {
  count: number;
  capped: boolean;
}

export interface WorkflowSummary {
  id: string;
  name: string;
  status: string;
  definition?: { searchKeys?: string[] } | null;
}

export interface ClientSummary {
  id: string;
  name: string;
}

export interface SavedView {
  id: string;
  name: string;
  page: string;
  query: string;
  shared: boolean;
  ownerUserId: string;
  mine: boolean;
  createdAt: string;
}

export interface Operation {
  id: string;
  action: 'cancel' | 'retry';
  from: 'start' | 'failed-step' | null;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED';
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  errors: { jobId: string; code: string; message: string }[];
  createdAt: string;
  finishedAt: string | null;
}
