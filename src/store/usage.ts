import type { Queryable } from '../db/index.js';

/** One organization's usage in one calendar month (UTC). */
export interface UsageRecord {
  /** First day of the month, `YYYY-MM-01`. */
  period: string;
  executions: number;
  steps: number;
  storageBytes: number;
  /** Tokens llm steps sent and received, and their cost in micro-USD (models without a price count 0). */
  aiInputTokens: number;
  aiOutputTokens: number;
  aiCostMicros: number;
  updatedAt: Date;
}

interface UsageRow {
  period: string;
  executions: string;
  steps: string;
  storage_bytes: string;
  ai_input_tokens: string;
  ai_output_tokens: string;
  ai_cost_micros: string;
  updated_at: Date;
}

/**
 * The organization's months, newest first (at most `months`). Counters are
 * bigint in the table; they leave as numbers (exact up to 2^53).
 */
export async function listUsage(db: Queryable, organizationId: string, months: number): Promise<UsageRecord[]> {
  const { rows } = await db.query<UsageRow>(
    `SELECT to_char(period_start, 'YYYY-MM-DD') AS period, executions::text, steps::text, storage_bytes::text,
            ai_input_tokens::text, ai_output_tokens::text, ai_cost_micros::text, updated_at
       FROM stepwise.usage_records WHERE organization_id = $1
      ORDER BY period_start DESC LIMIT $2`,
    [organizationId, months],
  );
  return rows.map((r) => ({
    period: r.period,
    executions: Number(r.executions),
    steps: Number(r.steps),
    storageBytes: Number(r.storage_bytes),
    aiInputTokens: Number(r.ai_input_tokens),
    aiOutputTokens: Number(r.ai_output_tokens),
    aiCostMicros: Number(r.ai_cost_micros),
    updatedAt: r.updated_at,
  }));
}

/** The current month's first day in UTC as the database sees it (`YYYY-MM-01`). */
export async function getCurrentPeriod(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ p: string }>(`SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS p`);
  return rows[0]!.p;
}
