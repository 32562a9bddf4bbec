import { CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

/**
 * Drafts a reply to an incoming email with a language model and sends it.
 * The model answers JSON ({subject, reply}) checked against a schema, so the
 * email step never sends a half-parsed answer. Run it from a webhook of the
 * mailbox (input: {email: {from, subject, body}}).
 */
export const draftEmailReply: OfficialTemplate = {
  slug: 'draft-email-reply',
  name: 'Draft an email reply',
  description:
    'Writes a reply to a customer email with an LLM in your company\'s voice and sends it over SMTP. ' +
    'Start it from your mailbox\'s webhook with {"email": {"from", "subject", "body"}}.',
  category: 'CUSTOMER_SUPPORT',
  tags: ['email', 'reply', 'llm', 'ai', 'support', 'inbox'],
  difficulty: 'BEGINNER',
  estimatedMinutesSaved: 5,
  requiredIntegrations: ['openai', 'smtp'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['companyName'],
    properties: {
      companyName: { type: 'string', minLength: 1, maxLength: 200 },
      tone: { type: 'string', maxLength: 200, default: 'friendly and concise' },
      llmCredential: { ...CREDENTIAL_NAME, default: 'openai', description: 'An openai (or compatible) credential' },
      model: { type: 'string', minLength: 1, maxLength: 200, default: 'gpt-4o-mini' },
      smtpCredential: { ...CREDENTIAL_NAME, default: 'smtp' },
    },
  },
  definition: {
    steps: [
      {
        id: 'draft',
        type: 'llm',
        credential: '[[config.llmCredential]]',
        model: '[[config.model]]',
        system: 'You answer customer emails for [[config.companyName]]. Be [[config.tone]]. Never promise refunds or dates you were not given.',
        prompt: 'Write a reply to this email.\nFrom: {{ input.email.from }}\nSubject: {{ input.email.subject }}\n\n{{ input.email.body }}',
        output: {
          schema: {
            type: 'object',
            properties: { subject: { type: 'string' }, reply: { type: 'string' } },
            required: ['reply'],
          },
        },
        maxTokens: 800,
        temperature: 0.3,
      },
      {
        id: 'send',
        type: 'email',
        credential: '[[config.smtpCredential]]',
        to: '{{ input.email.from }}',
        subject: '{{ $exists(steps.draft.data.subject) ? steps.draft.data.subject : "Re: " & input.email.subject }}',
        text: '{{ steps.draft.data.reply }}',
      },
    ],
  },
};
