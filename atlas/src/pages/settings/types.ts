/** Shapes of the settings routes (src/api/routes/users.ts, api-keys.ts, credentials.ts, retention.ts, usage.ts, audit.ts). */
import type { Role } from '../../session.js';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface User {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  createdAt: string;
  updatedAt: string;
  disabledAt: string | null;
}

export interface Invitation {
  token: string;
  path: string;
  expiresAt: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  userId: string | null;
  role: Role;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
}

export interface Credential {
  id: string;
  provider: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface RetentionPolicy {
  resourceType: string;
  hotRetentionDays: number;
  archiveRetentionDays: number;
  deleteAfterDays: number | null;
  isDefault: boolean;
  updatedAt: string | null;
}

export interface UsageMonth {
  period: string;
  executions: number;
  steps: number;
  storageBytes: number;
}

export interface Usage {
  plan: string;
  limits: { workflows: number | null; credentials: number | null; executionsPerMonth: number | null; concurrentRuns: number | null };
  current: UsageMonth & { workflows: number; credentials: number };
  history: UsageMonth[];
}

export interface PhiAuditEntry {
  id: string;
  at: string;
  actor: string;
  apiKeyId: string | null;
  resourceType: string;
  resourceId: string;
  jobId: string | null;
  workflowId: string | null;
  fields: string[];
  ip: string | null;
  userAgent: string | null;
}

export interface CredentialAuditEntry {
  id: string;
  at: string;
  action: string;
  credentialId: string;
  credentialName: string;
  actor: string;
  apiKeyId: string | null;
  jobId: string | null;
  stepId: string | null;
}
