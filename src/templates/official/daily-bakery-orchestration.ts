import { BASE_URL, CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

const auth = { authorization: 'Bearer {{ credentials.[[config.apiCredential]].token }}' };

/**
 * A bakery's morning as a saga: forecast demand, plan production from it,
 * order the ingredients the plan lacks, tell the team. Production plans and
 * purchase orders are undone (in reverse order) when a later step fails, so
 * a failed morning leaves no half-made plan and no orphan order; every write
 * carries an idempotency key of the day, so a step run again after a crash
 * does not order twice.
 */
export const dailyBakeryOrchestration: OfficialTemplate = {
  slug: 'daily-bakery-orchestration',
  name: 'Daily bakery orchestration',
  description:
    'Every morning: demand forecast, production plan, ingredient procurement and team notification through your bakery ' +
    'back-office API. If any step fails, the production plan and purchase order already made are cancelled. ' +
    'Schedule it daily (e.g. cron 0 4 * * *); input {"date": "YYYY-MM-DD"} or none for today.',
  category: 'OPERATIONS',
  tags: ['bakery', 'forecast', 'production', 'procurement', 'inventory', 'saga', 'http'],
  difficulty: 'ADVANCED',
  estimatedMinutesSaved: 45,
  requiredIntegrations: ['api_token'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['apiBaseUrl', 'notifyUrl'],
    properties: {
      apiBaseUrl: { ...BASE_URL, description: 'The back-office API: GET /forecast, POST/DELETE /production-plans, /purchase-orders' },
      apiCredential: { ...CREDENTIAL_NAME, default: 'bakery_api', description: 'An api_token credential: {token}' },
      notifyUrl: { ...BASE_URL, description: 'Where the summary is POSTed as {"text"} (a chat webhook)' },
    },
  },
  definition: {
    onFailure: 'compensate',
    steps: [
      {
        id: 'day',
        type: 'transform',
        expression: '$exists(input.date) ? input.date : $substring($now(), 0, 10)',
      },
      {
        id: 'forecast',
        type: 'http',
        method: 'GET',
        url: '[[config.apiBaseUrl]]/forecast?date={{ steps.day }}',
        headers: auth,
        retry: { maxAttempts: 3, initialMs: 1000 },
      },
      {
        id: 'production',
        type: 'http',
        method: 'POST',
        url: '[[config.apiBaseUrl]]/production-plans',
        headers: { ...auth, 'idempotency-key': 'production-{{ steps.day }}' },
        body: { date: '{{ steps.day }}', items: '{{ steps.forecast.body.items }}' },
        compensate: {
          step: {
            id: 'cancel_production',
            type: 'http',
            method: 'DELETE',
            url: '[[config.apiBaseUrl]]/production-plans/{{ steps.production.body.id }}',
            headers: auth,
            expectStatus: [200, 202, 204, 404],
          },
        },
      },
      {
        id: 'procurement',
        type: 'http',
        method: 'POST',
        url: '[[config.apiBaseUrl]]/purchase-orders',
        headers: { ...auth, 'idempotency-key': 'procurement-{{ steps.day }}' },
        body: { productionPlanId: '{{ steps.production.body.id }}', ingredients: '{{ steps.production.body.ingredients }}' },
        compensate: {
          step: {
            id: 'cancel_order',
            type: 'http',
            method: 'DELETE',
            url: '[[config.apiBaseUrl]]/purchase-orders/{{ steps.procurement.body.id }}',
            headers: auth,
            expectStatus: [200, 202, 204, 404],
          },
        },
      },
      {
        id: 'notify',
        type: 'http',
        method: 'POST',
        url: '[[config.notifyUrl]]',
        body: {
          text:
            'Bakery plan for {{ steps.day }}: {{ $count(steps.forecast.body.items) }} products, ' +
            'production plan {{ steps.production.body.id }}, purchase order {{ steps.procurement.body.id }}.',
        },
      },
      {
        id: 'summary',
        type: 'transform',
        expression:
          '{ "date": steps.day, "productionPlanId": steps.production.body.id, "purchaseOrderId": steps.procurement.body.id, "products": $count(steps.forecast.body.items) }',
      },
    ],
  },
};
