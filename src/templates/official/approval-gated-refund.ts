import { BASE_URL, CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

/**
 * A refund waits for a person: the job sleeps (no worker held) until an
 * approver decides through the API, the dashboard or a link; only an
 * approval reaches the payment API. The initiator may not approve their own
 * refund, and an unanswered request is rejected after the timeout.
 */
export const approvalGatedRefund: OfficialTemplate = {
  slug: 'approval-gated-refund',
  name: 'Approval-gated refund',
  description:
    'Asks an approver before issuing a refund: the run waits for a decision (with an optional note), then calls your payment ' +
    'API with an idempotency key, or stops if rejected or unanswered. Input: {"orderId", "amount", "reason"}.',
  category: 'ADMIN',
  tags: ['refund', 'approval', 'payments', 'finance', 'human-in-the-loop'],
  difficulty: 'BEGINNER',
  estimatedMinutesSaved: 10,
  requiredIntegrations: ['api_token'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['paymentsBaseUrl'],
    properties: {
      paymentsBaseUrl: { ...BASE_URL, description: 'The payment API: POST /refunds' },
      paymentsCredential: { ...CREDENTIAL_NAME, default: 'payments', description: 'An api_token credential: {token}' },
      currency: { type: 'string', pattern: '^[A-Z]{3}$', default: 'USD' },
      approverRoles: {
        type: 'array',
        minItems: 1,
        uniqueItems: true,
        items: { enum: ['VIEWER', 'MEMBER', 'ADMIN', 'OWNER'] },
        default: ['ADMIN', 'OWNER'],
      },
      decideWithinMs: { type: 'integer', minimum: 60000, maximum: 2592000000, default: 259200000, description: 'Rejected when undecided this long (default 3 days)' },
    },
  },
  definition: {
    steps: [
      {
        id: 'approve',
        type: 'approval',
        title: 'Refund {{ input.amount }} [[config.currency]] for order {{ input.orderId }}: {{ input.reason }}',
        approvers: { roles: { $config: 'approverRoles' }, excludeInitiator: true },
        required: 1,
        form: { type: 'object', properties: { note: { type: 'string', maxLength: 1000 } } },
        timeoutMs: { $config: 'decideWithinMs' },
        onTimeout: 'reject',
        onReject: 'fail',
      },
      {
        id: 'refund',
        type: 'http',
        method: 'POST',
        url: '[[config.paymentsBaseUrl]]/refunds',
        headers: { authorization: 'Bearer {{ credentials.[[config.paymentsCredential]].token }}', 'idempotency-key': 'refund-{{ input.orderId }}' },
        body: { orderId: '{{ input.orderId }}', amount: '{{ input.amount }}', currency: '[[config.currency]]', note: '{{ steps.approve.values.note }}' },
        retry: { maxAttempts: 5, initialMs: 2000, on: ['HTTP_ERROR'] },
      },
      {
        id: 'result',
        type: 'transform',
        expression: '{ "refundId": steps.refund.body.id, "approvedBy": steps.approve.decidedBy, "amount": input.amount }',
      },
    ],
  },
};
