import type { StepBase } from '../../model/definition.js';
import { ValidationError } from '../../errors/index.js';
import { truncate } from '../../util/json.js';
import { renderString, renderTemplates } from '../definition/expressions.js';
import { MAX_RECIPIENTS, parseMailboxes, parseSender, type Mailbox } from './email-addresses.js';
import { ByteBudget, MAX_ATTACHMENTS, resolveAttachments, type EmailAttachment } from './email-attachments.js';
import { EgressDeniedError } from '../../net/errors.js';
import { emailMessageId, smtpSettings, smtpStepError, smtpTransport } from './email-smtp.js';
import { noChildren, StepError, stepTimeout, type StepContext, type StepType } from './types.js';

/**
 * Sends one email through the SMTP server of an `smtp` credential
 * (`{ host, port, secure?, user?, password?, from }`). Addresses, subject,
 * text and html are `{{ }}` templates; attachments come from blob storage
 * (an artifact or screenshot id) or from a value (a step's result as a CSV
 * or JSON file). Output `{ messageId, accepted, rejected }`.
 */
export interface EmailStep extends StepBase {
  type: 'email';
  credential: string;
  /** A template rendering to comma-separated addresses (or to an array of them), or an array of such templates. */
  to: string | string[];
  cc?: string | string[];
  bcc?: string | string[];
  replyTo?: string | string[];
  subject: string;
  text?: string;
  html?: string;
  attachments?: EmailAttachment[];
}

export interface EmailOutput {
  /** The Message-ID the email was sent with: the same for every send of this step of this job. */
  messageId: string;
  /** Recipients the server accepted. */
  accepted: string[];
  /** Recipients the server refused while others were accepted (when it refuses all, the step fails). */
  rejected: string[];
}

const ADDRESS_TEMPLATE_CHARS = 10_000;
const MAX_SUBJECT_CHARS = 998; // RFC 5322's line limit; a longer rendered subject is cut.
const MAX_BODY_TEMPLATE_CHARS = 1_000_000;

/**
 * One address field: a template string, or a list of at most MAX_RECIPIENTS
 * templates. if/then/else rather than anyOf, so a bad value gets the error of
 * the form it is ("must NOT have more than 100 items") and not of the other.
 */
const addressField = {
  if: { type: 'array' },
  then: { type: 'array', minItems: 1, maxItems: MAX_RECIPIENTS, items: { type: 'string', minLength: 1, maxLength: 1_000 } },
  else: { type: 'string', minLength: 1, maxLength: ADDRESS_TEMPLATE_CHARS },
};

const CONTENT_TYPE_PATTERN = '^[a-z]+/[a-z0-9.+-]{1,80}$';
const FILE_NAME = { type: 'string', minLength: 1, maxLength: 500 };

/** An attachment: `{ artifact, name?, contentType? }` from blob storage, or `{ name, content, contentType? }` from a value. */
const attachment = {
  type: 'object',
  if: { required: ['artifact'] },
  then: {
    additionalProperties: false,
    properties: { artifact: { type: 'string', minLength: 1, maxLength: 1_000 }, name: FILE_NAME, contentType: { type: 'string', pattern: CONTENT_TYPE_PATTERN } },
  },
  else: {
    additionalProperties: false,
    required: ['name', 'content'],
    properties: { name: FILE_NAME, content: {}, contentType: { type: 'string', pattern: CONTENT_TYPE_PATTERN } },
  },
};

const ADDRESS_FIELDS = ['to', 'cc', 'bcc'] as const;

export const emailStep: StepType<EmailStep> = {
  type: 'email',
  properties: {
    credential: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' },
    to: addressField,
    cc: addressField,
    bcc: addressField,
    replyTo: addressField,
    subject: { type: 'string', minLength: 1, maxLength: 2_000 },
    text: { type: 'string', minLength: 1, maxLength: MAX_BODY_TEMPLATE_CHARS },
    html: { type: 'string', minLength: 1, maxLength: MAX_BODY_TEMPLATE_CHARS },
    attachments: { type: 'array', maxItems: MAX_ATTACHMENTS, items: attachment },
  },
  required: ['credential', 'to', 'subject'],
  sources: (step) => ({
    templates: {
      to: step.to,
      cc: step.cc ?? null,
      bcc: step.bcc ?? null,
      replyTo: step.replyTo ?? null,
      subject: step.subject,
      text: step.text ?? null,
      html: step.html ?? null,
      attachments: step.attachments ?? [],
    },
  }),
  validate(step, path) {
    if (step.text === undefined && step.html === undefined) {
      throw new ValidationError(`${path}/text: an email needs text, html or both`, { path: `${path}/text` });
    }
    // Listed recipients are counted at save; a template that renders to a list is counted when it runs.
    let listed = 0;
    for (const field of ADDRESS_FIELDS) {
      const value = step[field];
      listed += Array.isArray(value) ? value.length : value === undefined ? 0 : 1;
      if (listed > MAX_RECIPIENTS) {
        throw new ValidationError(`${path}/${field}: to, cc and bcc together list ${listed} recipients; at most ${MAX_RECIPIENTS}`, {
          path: `${path}/${field}`,
          limit: MAX_RECIPIENTS,
        });
      }
    }
  },
  credentials: (step) => [step.credential],
  children: noChildren,
  block: false,
  attemptTimeoutMs: stepTimeout,
  sideEffects: true,
  abortable: true,
  compensation: true,
  run: runEmail,
};

async function mailboxes(step: EmailStep, field: 'to' | 'cc' | 'bcc' | 'replyTo', ctx: StepContext, where: string): Promise<Mailbox[]> {
  const value = step[field];
  if (value === undefined) return [];
  return parseMailboxes(field, await renderTemplates(value, ctx.scope, `${where}.${field}`));
}

async function runEmail(step: EmailStep, ctx: StepContext): Promise<EmailOutput> {
  const where = `steps.${step.id}`;
  const { provider, secret } = ctx.credential(step.credential);
  const settings = smtpSettings(step.credential, provider, secret);
  const sender = parseSender(settings.from);

  const to = await mailboxes(step, 'to', ctx, where);
  const cc = await mailboxes(step, 'cc', ctx, where);
  const bcc = await mailboxes(step, 'bcc', ctx, where);
  const replyTo = await mailboxes(step, 'replyTo', ctx, where);
  if (to.length === 0) throw new StepError('EMAIL_BAD_ADDRESS', 'to: rendered to no recipient', { field: 'to' });
  const recipients = to.length + cc.length + bcc.length;
  if (recipients > MAX_RECIPIENTS) {
    throw new StepError('EMAIL_TOO_MANY_RECIPIENTS', `to, cc and bcc rendered to ${recipients} recipients; at most ${MAX_RECIPIENTS}`, {
      recipients,
      limit: MAX_RECIPIENTS,
    });
  }

  // A line break in a header would start another header; the subject is one line.
  const subject = truncate((await renderString(step.subject, ctx.scope, `${where}.subject`)).replace(/[\r\n]+/g, ' '), MAX_SUBJECT_CHARS);
  const budget = new ByteBudget();
  const text = step.text === undefined ? undefined : await renderString(step.text, ctx.scope, `${where}.text`);
  if (text !== undefined) budget.add(Buffer.byteLength(text), 'text');
  const html = step.html === undefined ? undefined : await renderString(step.html, ctx.scope, `${where}.html`);
  if (html !== undefined) budget.add(Buffer.byteLength(html), 'html');
  const attachments = await resolveAttachments(step.attachments ?? [], ctx, where, budget);

  const messageId = emailMessageId(ctx.job.id, ctx.path, sender.address);
  const transport = await smtpTransport(settings, ctx.net, ctx.signal);
  const server = `SMTP server ${settings.host}:${settings.port}`;
  try {
    const info = await transport.sendMail({
      from: sender,
      to,
      ...(cc.length > 0 ? { cc } : {}),
      ...(bcc.length > 0 ? { bcc } : {}),
      ...(replyTo.length > 0 ? { replyTo } : {}),
      subject,
      ...(text !== undefined ? { text } : {}),
      ...(html !== undefined ? { html } : {}),
      attachments,
      messageId,
      // nodemailer closes the connection when this aborts (timeout, cancel, lost lease, shutdown).
      signal: ctx.signal,
    });
    return { messageId, accepted: addresses(info.accepted), rejected: addresses(info.rejected) };
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    // The policy refused the SMTP host: EGRESS_DENIED (step-attempts.ts), not a connection failure worth a retry.
    if (err instanceof EgressDeniedError) throw err;
    throw smtpStepError(err, server);
  } finally {
    transport.close();
  }
}

/** nodemailer lists recipients as strings (or address objects for some transports). */
function addresses(list: readonly unknown[] | undefined): string[] {
  return (list ?? []).map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown }).address ?? '')));
}
