import type { Db } from '../db/index.js';
import { DEFAULT_LLM_PRICES, priceOf, type PriceTable } from '../ai/prices.js';
import { findAiTokenUse, limitsOf, recordAiUsage } from '../store/index.js';
import type { AiUsageService } from './services.js';
import { StepError } from './steps/types.js';

/**
 * AI token usage over the database (store/ai-usage.ts): the plan's
 * aiTokensPerMonth checked before each provider call (one statement), and
 * each call's tokens and cost added to this month's usage row as they are
 * spent. The check is not a reservation: calls already in flight when the
 * limit is reached still count, so a month can end a few calls over it.
 */
export function aiUsageService(db: Db, prices: PriceTable = DEFAULT_LLM_PRICES): AiUsageService {
  return {
    async assertTokensLeft(organizationId: string): Promise<void> {
      const use = await findAiTokenUse(db, organizationId);
      if (!use) return;
      const limit = limitsOf(use.plan).aiTokensPerMonth;
      if (limit === null || use.tokens < limit) return;
      throw new StepError(
        'PLAN_LIMIT_EXCEEDED',
        `the ${use.plan} plan allows ${limit} AI tokens a month and ${use.tokens} are used (upgrade the plan or wait for next month)`,
        { resource: 'aiTokens', limit, current: use.tokens, plan: use.plan },
      );
    },
    async record(organizationId, usage): Promise<void> {
      if (usage.inputTokens === 0 && usage.outputTokens === 0 && usage.costMicros === 0) return;
      await recordAiUsage(db, organizationId, usage);
    },
    priceOf: (model) => priceOf(prices, model),
  };
}
