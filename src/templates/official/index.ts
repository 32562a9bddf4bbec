import type { OfficialTemplate } from '../types.js';
import { approvalGatedRefund } from './approval-gated-refund.js';
import { claimStatusCheck } from './claim-status-check.js';
import { dailyBakeryOrchestration } from './daily-bakery-orchestration.js';
import { documentTriage } from './document-triage.js';
import { draftEmailReply } from './draft-email-reply.js';
import { nightlyReport } from './nightly-report.js';
import { payerEligibilityCheck } from './payer-eligibility-check.js';
import { webhookToCrmSync } from './webhook-to-crm-sync.js';

/** Every official template; the startup sync makes the table's OFFICIAL rows exactly these (by slug). */
export const OFFICIAL_TEMPLATES: readonly OfficialTemplate[] = [
  payerEligibilityCheck,
  claimStatusCheck,
  draftEmailReply,
  dailyBakeryOrchestration,
  webhookToCrmSync,
  nightlyReport,
  documentTriage,
  approvalGatedRefund,
];
