import type { JobStatus } from '../store/index.js';

/**
 * Ports to Stepwise's own records that some step types need: approvals,
 * sub-workflows, rate-limit buckets. The worker provides them over the
 * database; a test may leave any out, and a step that needs a missing one
 * fails with SERVICE_UNAVAILABLE naming it.
 */
export interface StepServices {
  approvals?: ApprovalService | undefined;
  children?: ChildJobService | undefined;
  rateLimits?: RateLimitService | undefined;
}

/** Who may decide an approval. */
export interface Approvers {
  roles: string[];
  users: string[];
  /** The user whose key started the run may not decide. */
  excludeInitiator: boolean;
}

export interface ApprovalRequest {
  organizationId: string;
  jobId: string;
  /** The approval step's path in its job; one approval per (job, path). */
  stepPath: string;
  title: string;
  approvers: Approvers;
  /** Distinct approvers needed to approve; one reject rejects. */
  required: number;
  /** JSON Schema of the values a decision carries. */
  form: Record<string, unknown> | null;
  /** When nobody decided by then, the step's onTimeout decides (null: never). */
  expiresAt: Date | null;
  /** The user whose key started the run (for excludeInitiator). */
  initiatedBy: string | null;
}

export type ApprovalStatus = 'PENDING' | 'APPROVED' | 'REJECTED' | 'EXPIRED';

export interface ApprovalState {
  id: string;
  status: ApprovalStatus;
  /** Users whose decisions made the outcome (approvers for APPROVED, the rejecter for REJECTED). */
  decidedBy: string[];
  /** The form values of the deciding decision(s), merged; null when none. */
  values: Record<string, unknown> | null;
  /** When the step's onTimeout decides (null: never). */
  expiresAt: Date | null;
  /** Every decision so far, in the order made (the step reports each in the stream once). */
  decisions: ApprovalDecision[];
}

/** One approver's decision, as audited. */
export interface ApprovalDecision {
  userId: string;
  decision: 'APPROVE' | 'REJECT';
  comment: string | null;
  values: Record<string, unknown> | null;
  decidedAt: Date;
}

export interface ApprovalService {
  /** Open the approval of a job's step; a second call for the same (job, path) returns the first one. */
  open(request: ApprovalRequest): Promise<{ id: string; created: boolean }>;
  find(organizationId: string, approvalId: string): Promise<ApprovalState | null>;
  /** Close an approval nobody decided in time with the step's onTimeout outcome (a no-op once decided). */
  expire(organizationId: string, approvalId: string, outcome: 'APPROVED' | 'REJECTED'): Promise<ApprovalState>;
}

export interface ChildJobRequest {
  organizationId: string;
  parentJobId: string;
  /** The parent step's path; one child per (parent job, path). */
  parentStepPath: string;
  /** The parent's depth (the child's is one more). */
  parentDepth: number;
  workflowId: string;
  /** A pinned version, or the workflow's current one. */
  version: number | 'current';
  input: unknown;
}

export interface ChildJob {
  jobId: string;
  runNumber: number;
  status: JobStatus;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
}

export interface ChildJobService {
  /** Start the child of a parent's step, or find the one started before. */
  start(request: ChildJobRequest): Promise<ChildJob & { created: boolean }>;
  find(organizationId: string, jobId: string): Promise<ChildJob | null>;
}

/** One token from a bucket: the organization's `bucket` for one key value, `limit` per `perMs`. */
export interface BucketTake {
  bucket: string;
  key: string;
  limit: number;
  perMs: number;
}

export interface RateLimitService {
  /**
   * Take one token from each bucket, all or none. Resolves 0 when taken,
   * else the milliseconds until every bucket could give one.
   */
  take(organizationId: string, takes: readonly BucketTake[]): Promise<number>;
}
