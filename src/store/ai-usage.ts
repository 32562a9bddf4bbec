import type { Queryable } from '../db/index.js';

/** The current month (UTC) as the usage triggers key it. */
const CURRENT_PERIOD = `(date_trunc('month', now() AT TIME ZONE 'UTC'))::date`;

export interface AiTokenUse {
  inputTokens: number;
  outputTokens: number;
  costMicros: number;
}

/**
 * Add one provider call's tokens and cost to the organization's usage of
 * this month: one upsert of one row, so it cannot deadlock with a flush
 * (which locks several organizations' rows, in key order).
 */
export async function recordAiUsage(db: Queryable, organizationId: string, use: AiTokenUse): Promise<void> {
  await db.query(
    `INSERT INTO stepwise.usage_records AS r (organization_id, period_start, ai_input_tokens, ai_output_tokens, ai_cost_micros)
     VALUES ($1, ${CURRENT_PERIOD}, $2, $3, $4)
     ON CONFLICT (organization_id, period_start) DO UPDATE
        SET ai_input_tokens = r.ai_input_tokens + excluded.ai_input_tokens,
            ai_output_tokens = r.ai_output_tokens + excluded.ai_output_tokens,
            ai_cost_micros = r.ai_cost_micros + excluded.ai_cost_micros,
            updated_at = now()`,
    [organizationId, use.inputTokens, use.outputTokens, use.costMicros],
  );
}

/** The organization's plan and the AI tokens (input + output) it used this month; null when it does not exist. */
export async function findAiTokenUse(db: Queryable, organizationId: string): Promise<{ plan: string; tokens: number } | null> {
  const { rows } = await db.query<{ plan: string; tokens: string }>(
    `SELECT o.plan, coalesce(u.ai_input_tokens + u.ai_output_tokens, 0)::text AS tokens
       FROM stepwise.organizations o
       LEFT JOIN stepwise.usage_records u ON u.organization_id = o.id AND u.period_start = ${CURRENT_PERIOD}
      WHERE o.id = $1`,
    [organizationId],
  );
  return rows[0] ? { plan: rows[0].plan, tokens: Number(rows[0].tokens) } : null;
}
