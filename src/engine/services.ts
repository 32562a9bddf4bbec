import type { BrowserSession, BrowserState } from '../browser/types.js';
import type { RetrievalMatch } from '../model/knowledge.js';
import type { JobStatus, KnowledgeDocumentInput } from '../store/index.js';

/**
 * Ports to Stepwise's own records that some step types need: approvals,
 * sub-workflows, rate-limit buckets. The worker provides them over the
 * database; a test may leave any out, and a step that needs a missing one
 * fails with SERVICE_UNAVAILABLE naming it.
 */
export interface StepServices {
  /** Seals what a step keeps in its checkpoint but must not keep readable (the credential key ring). */
  sealer?: Sealer | undefined;
  /** Browser sessions of the jobs running here (browser steps). */
  browser?: BrowserSessions | undefined;
  /** The organization's stored artifacts by id (a browser step uploads one; absent without a blob store). */
  artifacts?: { read(organizationId: string, id: string): Promise<{ bytes: Buffer; name: string; contentType: string }> } | undefined;
  approvals?: ApprovalService | undefined;
  children?: ChildJobService | undefined;
  rateLimits?: RateLimitService | undefined;
  /** Knowledge collections and the job's retrieval record (retrieve and markUsed steps, an llm step's usedDocuments). */
  knowledge?: KnowledgeService | undefined;
  /** AI token usage against the organization's plan (llm steps). */
  aiUsage?: AiUsageService | undefined;
}

/** One document a retrieval returned, in rank order: its fields as the API wrote them, its id, score and rank. */
export interface RetrievedDocument extends KnowledgeDocumentInput {
  /** The knowledge document's id. */
  id: string;
  /** Relevance, higher is better; rank 1 is the best. */
  score: number;
  rank: number;
}

export interface RetrievalRequest {
  organizationId: string;
  jobId: string;
  workflowId: string;
  /** The retrieve step's path in its job; one retrieval per (job, path). */
  stepPath: string;
  collection: string;
  query: string;
  topK: number;
  /** Every tag must be on a document for it to be returned. */
  tags: readonly string[];
  /** `all` (default): every word, or the query's search syntax; `any`: any word, more words ranking higher. */
  match?: RetrievalMatch | undefined;
}

export interface Retrieval {
  id: string;
  /** Newly made, or the one a run of this step recorded before (a resumed job gets the same documents). */
  created: boolean;
  query: string;
  tookMs: number;
  averageScore: number | null;
  documents: RetrievedDocument[];
  /** A retrieval read back (created false) whose documents were deleted since: how many are left out. */
  missingDocuments?: number;
}

export interface MarkUsedRequest {
  organizationId: string;
  jobId: string;
  /** The step that used them (a markUsed step, or the llm step whose output named them). */
  usedByPath: string;
  /** Only the retrieval of this retrieve step path; null: every retrieval of the job. */
  retrievalPath: string | null;
  /** Candidate retrieve step paths, innermost frame first (a markUsed step's `retrieval`): the first the job has a retrieval for is used; overrides retrievalPath. */
  retrievalPaths?: readonly string[];
  /** Document external ids or ids, as the step names them. */
  documents: readonly string[];
  reason: string | null;
}

export interface KnowledgeService {
  /** Run the query and record the retrieval, or return the one recorded before for (job, stepPath). */
  retrieve(request: RetrievalRequest): Promise<Retrieval>;
  /** Mark retrieved documents used; a document already marked keeps its first mark. Returns how many retrieved documents matched. */
  markUsed(request: MarkUsedRequest): Promise<{ marked: number; unknown: string[]; retrievals?: number }>;
}

export interface AiUsageService {
  /** Throws a StepError (PLAN_LIMIT_EXCEEDED) when the organization's plan has no AI tokens left this month. */
  assertTokensLeft(organizationId: string): Promise<void>;
  /** Count tokens a call used into this month's usage (counted as they are spent, a failed or repeated call included). */
  record(organizationId: string, usage: { inputTokens: number; outputTokens: number; costMicros: number }): Promise<void>;
  /** USD per 1M input/output tokens of a model (the worker's price table: defaults and STEPWISE_LLM_PRICES); null: unknown, costs 0. */
  priceOf(model: string): { input: number; output: number } | null;
}

/**
 * Seals what a step keeps in its checkpoint but must not keep readable (a
 * browser session's cookies and storage): bound to `associatedData`, so a
 * sealed value moved elsewhere fails to open. security/sealer.ts implements
 * it with the credential key ring.
 */
export interface Sealer {
  seal(value: unknown, associatedData: string): string;
  open(text: string, associatedData: string): unknown;
  /** The same for bytes (a browser trace), in a binary form. */
  sealBytes(bytes: Buffer, associatedData: string): Buffer;
  openBytes(sealed: Buffer, associatedData: string): Buffer;
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
  /**
   * Hold one bucket empty until `untilMs` (epoch ms; a provider's 429
   * Retry-After), so every taker of it waits until then; a longer hold in
   * place stays.
   */
  hold(organizationId: string, take: BucketTake, untilMs: number): Promise<void>;
}

/**
 * The browser sessions of the jobs running on this worker: one context per
 * (job, session name), shared by a job's consecutive browser steps that
 * name the same session, closed when the job's run here ends (it completed,
 * failed or was suspended). src/browser/sessions.ts implements it.
 */
export interface BrowserSessions {
  /**
   * The job's open session of this name, its allowed origins set to these;
   * else a new context restored from `state` (carried from an earlier step,
   * a run before a crash, or another worker) or empty. One step at a time
   * holds a session: call `done` when the step ends.
   */
  acquire(
    jobId: string,
    session: string,
    options: { allowOrigins: readonly string[]; state?: BrowserState | undefined; signal: AbortSignal },
  ): Promise<BrowserSessionLease>;
  /** Close every session of the job (its run here ended). */
  release(jobId: string): Promise<void>;
}

/** A step's hold on a session. */
export interface BrowserSessionLease {
  session: BrowserSession;
  /** The context was already open (an earlier step of this run), not restored. */
  reused: boolean;
  /** What the session's pages were refused since the last call, one per (host, reason). */
  refusals(): EgressNotice[];
  /** The step is done with it; `discard` closes it (crashed, closed, or in an unknown state). */
  done(options: { discard: boolean }): Promise<void>;
}

/** A request the egress policy refused. */
export interface EgressNotice {
  host: string;
  /** An address class (loopback, private, metadata, …), not-allowed (outside the step's origins), invalid-host, … */
  reason: string;
  url?: string;
}
