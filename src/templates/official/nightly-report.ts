import { CREDENTIAL_NAME, type OfficialTemplate } from '../types.js';

/**
 * One read-only query against your database, mailed as a JSON attachment
 * with a one-line summary. The query is a setting; it runs in a read-only
 * transaction with a row cap (the sql step's rules), so a report cannot
 * change data or flood a mailbox.
 */
export const nightlyReport: OfficialTemplate = {
  slug: 'nightly-report',
  name: 'Nightly report',
  description:
    'Runs a read-only SQL query against your PostgreSQL or MySQL database and emails the rows as an attachment to a list of ' +
    'recipients. Schedule it nightly (e.g. cron 0 6 * * *).',
  category: 'OPERATIONS',
  tags: ['report', 'sql', 'database', 'email', 'nightly', 'schedule'],
  difficulty: 'INTERMEDIATE',
  estimatedMinutesSaved: 20,
  requiredIntegrations: ['postgres', 'smtp'],
  optionalIntegrations: ['mysql'],
  settingsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['query', 'recipients'],
    properties: {
      databaseCredential: { ...CREDENTIAL_NAME, default: 'reporting_db', description: 'A postgres or mysql credential: {connectionString}' },
      query: { type: 'string', minLength: 1, maxLength: 20000, description: 'One read-only statement' },
      maxRows: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
      reportName: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9 _.-]+$', default: 'Nightly report' },
      recipients: { type: 'array', minItems: 1, maxItems: 50, items: { type: 'string', format: 'email' } },
      smtpCredential: { ...CREDENTIAL_NAME, default: 'smtp' },
    },
  },
  definition: {
    steps: [
      {
        id: 'report',
        type: 'sql',
        credential: '[[config.databaseCredential]]',
        query: { $config: 'query' },
        maxRows: { $config: 'maxRows' },
        timeoutMs: 60_000,
      },
      {
        id: 'mail',
        type: 'email',
        credential: '[[config.smtpCredential]]',
        to: { $config: 'recipients' },
        subject: '[[config.reportName]]: {{ steps.report.rowCount }} rows',
        text:
          '[[config.reportName]] ran at {{ $now() }} and returned {{ steps.report.rowCount }} rows' +
          '{{ steps.report.truncated ? " (cut at the row limit)" : "" }}. The rows are attached as JSON.',
        attachments: [{ name: 'report.json', content: '{{ steps.report.rows }}', contentType: 'application/json' }],
      },
      {
        id: 'result',
        type: 'transform',
        expression: '{ "rows": steps.report.rowCount, "truncated": steps.report.truncated, "messageId": steps.mail.messageId }',
      },
    ],
  },
};
