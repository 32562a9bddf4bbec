import { BASE_URL, CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

const FIELD = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$', maxLength: 200 } as const;

/**
 * A signup, order or form webhook becomes a CRM contact: the payload's fields
 * are mapped (paths are settings), the contact is upserted by email, and a
 * note with the event is added to it. The event id is the idempotency key,
 * so a webhook delivered twice updates the contact once.
 */
export const webhookToCrmSync: OfficialTemplate = {
  slug: 'webhook-to-crm-sync',
  name: 'Webhook to CRM sync',
  description:
    'Turns incoming webhook events (signups, orders, form posts) into CRM contacts: maps the fields you choose, upserts the ' +
    'contact by email and adds the event as a note. Enable the workflow\'s webhook and point your source at it.',
  category: 'SALES',
  tags: ['crm', 'webhook', 'contacts', 'leads', 'sync', 'http'],
  difficulty: 'BEGINNER',
  estimatedMinutesSaved: 3,
  requiredIntegrations: ['api_token'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['crmBaseUrl'],
    properties: {
      crmBaseUrl: { ...BASE_URL, description: 'The CRM API: PUT /contacts/{email}, POST /contacts/{id}/notes' },
      crmCredential: { ...CREDENTIAL_NAME, default: 'crm', description: 'An api_token credential: {token}' },
      emailField: { ...FIELD, default: 'email', description: 'Path of the email in the webhook payload' },
      nameField: { ...FIELD, default: 'name' },
      companyField: { ...FIELD, default: 'company' },
      eventIdField: { ...FIELD, default: 'id' },
      source: { type: 'string', minLength: 1, maxLength: 100, default: 'webhook' },
    },
  },
  definition: {
    steps: [
      {
        id: 'contact',
        type: 'transform',
        expression:
          '{ "email": $lowercase($trim($string(input.[[config.emailField]]))), "name": input.[[config.nameField]], ' +
          '"company": input.[[config.companyField]], "source": "[[config.source]]", "eventId": $string(input.[[config.eventIdField]]) }',
      },
      {
        id: 'upsert',
        type: 'http',
        method: 'PUT',
        url: '[[config.crmBaseUrl]]/contacts/{{ $encodeUrlComponent(steps.contact.email) }}',
        headers: { authorization: 'Bearer {{ credentials.[[config.crmCredential]].token }}', 'idempotency-key': 'contact-{{ steps.contact.eventId }}' },
        body: { email: '{{ steps.contact.email }}', name: '{{ steps.contact.name }}', company: '{{ steps.contact.company }}', source: '{{ steps.contact.source }}' },
        retry: { maxAttempts: 5, initialMs: 1000, on: ['HTTP_ERROR', 'HTTP_STATUS'] },
      },
      {
        id: 'note',
        type: 'http',
        method: 'POST',
        url: '[[config.crmBaseUrl]]/contacts/{{ steps.upsert.body.id }}/notes',
        headers: { authorization: 'Bearer {{ credentials.[[config.crmCredential]].token }}', 'idempotency-key': 'note-{{ steps.contact.eventId }}' },
        body: { text: 'Event {{ steps.contact.eventId }} from {{ steps.contact.source }}', payload: '{{ input }}' },
      },
      {
        id: 'result',
        type: 'transform',
        expression: '{ "contactId": steps.upsert.body.id, "email": steps.contact.email, "noteId": steps.note.body.id }',
      },
    ],
  },
};
