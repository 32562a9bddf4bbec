import { CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

/**
 * Triage with the organization's own rules: the document's text retrieves
 * the most relevant rules of a knowledge collection, the model decides a
 * queue and priority citing the rules it used (their external ids), and
 * those are marked used in the job's retrieval record, so you can later see
 * which rules decide what.
 */
export const documentTriage: OfficialTemplate = {
  slug: 'document-triage',
  name: 'Document triage with retrieval',
  description:
    'Classifies an incoming document (fax, letter, claim attachment, ticket) into a queue and priority using the rules of a ' +
    'knowledge collection: retrieves the relevant rules, asks an LLM to decide and cite them, and records which rules were used. ' +
    'Input: {"document": {"title", "text"}}.',
  category: 'CUSTOMER_SUPPORT',
  tags: ['triage', 'documents', 'classification', 'retrieval', 'knowledge', 'llm', 'ai', 'rules'],
  difficulty: 'ADVANCED',
  estimatedMinutesSaved: 4,
  requiredIntegrations: ['openai'],
  optionalIntegrations: [],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['collection', 'queues'],
    properties: {
      collection: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'The knowledge collection holding the triage rules' },
      queues: { type: 'array', minItems: 1, maxItems: 50, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 } },
      topK: { type: 'integer', minimum: 1, maximum: 50, default: 5 },
      llmCredential: { ...CREDENTIAL_NAME, default: 'openai' },
      model: { type: 'string', minLength: 1, maxLength: 200, default: 'gpt-4o-mini' },
    },
  },
  definition: {
    steps: [
      {
        id: 'rules',
        type: 'retrieve',
        collection: '[[config.collection]]',
        // A whole letter never holds every word of a rule: match any of its words, the rules touching more of them first.
        query: '{{ $substring(input.document.title & " " & input.document.text, 0, 2000) }}',
        match: 'any',
        topK: { $config: 'topK' },
      },
      {
        id: 'decide',
        type: 'llm',
        credential: '[[config.llmCredential]]',
        model: '[[config.model]]',
        system:
          'You triage documents into exactly one of these queues: [[config.queues]]. Follow the rules given; ' +
          'cite the ids of the rules you applied in usedDocuments.',
        prompt:
          'Rules:\n{{ $join(steps.rules.documents.("[" & externalId & "] " & title & ": when " & condition & " then " & action), "\n") }}\n\n' +
          'Document "{{ input.document.title }}":\n{{ input.document.text }}',
        output: {
          schema: {
            type: 'object',
            properties: {
              queue: { type: 'string' },
              priority: { enum: ['low', 'normal', 'high', 'urgent'] },
              reason: { type: 'string' },
              usedDocuments: { type: 'array', items: { type: 'string' } },
            },
            required: ['queue', 'priority', 'usedDocuments'],
          },
        },
        maxTokens: 400,
        temperature: 0,
      },
      {
        id: 'result',
        type: 'transform',
        expression:
          '{ "queue": steps.decide.data.queue, "priority": steps.decide.data.priority, "reason": steps.decide.data.reason, ' +
          '"rulesUsed": steps.decide.data.usedDocuments, "rulesRetrieved": steps.rules.count }',
      },
    ],
  },
};
