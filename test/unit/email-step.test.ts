import { describe, expect, it } from 'vitest';
import { isPlausibleAddress, parseMailboxes, parseSender } from '../../src/engine/steps/email-addresses.js';
import { ByteBudget, MAX_EMAIL_BYTES } from '../../src/engine/steps/email-attachments.js';
import { emailMessageId, smtpSettings, smtpStepError } from '../../src/engine/steps/email-smtp.js';
import { StepError } from '../../src/engine/steps/types.js';

function failure(fn: () => unknown): StepError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StepError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('email addresses', () => {
  it('parses comma-separated lists, arrays, display names with commas, and skips empty values', () => {
    expect(parseMailboxes('to', 'ann@x.org, "Doe, Bob" <bob@x.org>')).toEqual([
      { name: '', address: 'ann@x.org' },
      { name: 'Doe, Bob', address: 'bob@x.org' },
    ]);
    expect(parseMailboxes('cc', ['a@x.org', ['b@x.org, c@x.org'], null, ''])).toEqual([
      { name: '', address: 'a@x.org' },
      { name: '', address: 'b@x.org' },
      { name: '', address: 'c@x.org' },
    ]);
    expect(parseMailboxes('bcc', null)).toEqual([]);
    expect(parseSender('Ops <ops@acme.test>')).toEqual({ name: 'Ops', address: 'ops@acme.test' });
  });

  it.each([
    ['nobody', 'is not an email address'],
    ['a@@x.org', 'is not an email address'],
    ['a@x..org', 'is not an email address'],
    ['ann@x.org bob@x.org', 'looks like two addresses'],
    ['ann@x.org\r\nBcc: evil@x.org', 'line break'],
  ])('refuses %j with EMAIL_BAD_ADDRESS naming the field', (value, message) => {
    const err = failure(() => parseMailboxes('replyTo', value));
    expect(err.code).toBe('EMAIL_BAD_ADDRESS');
    expect(err.message).toMatch(/^replyTo: /);
    expect(err.message).toContain(message);
    expect(err.data).toMatchObject({ field: 'replyTo' });
  });

  it('refuses a non-text recipient and a sender of two addresses', () => {
    expect(failure(() => parseMailboxes('to', [{ address: 'a@x.org' }])).message).toContain('must be text');
    expect(failure(() => parseSender('a@x.org, b@x.org')).message).toContain('credential.from: needs exactly one address, got 2');
  });

  it('accepts plain, internal and IP-literal domains', () => {
    for (const a of ['a.b+tag@sub.example.co', 'ops@localhost', 'x@[127.0.0.1]', 'ü@bücher.de']) expect(isPlausibleAddress(a), a).toBe(true);
    expect(isPlausibleAddress(`${'a'.repeat(65)}@x.org`)).toBe(false);
    expect(isPlausibleAddress('a@-x.org')).toBe(false);
  });
});

describe('Message-ID', () => {
  it('is the job and the step path, never the attempt, and a valid dot-atom for nested paths', () => {
    const job = '01900000-0000-7000-8000-00000000abcd';
    expect(emailMessageId(job, 'send', 'ops@acme.test')).toBe(`<${job}.send@acme.test>`);
    expect(emailMessageId(job, 'each[17].notify', 'ops@acme.test')).toBe(`<${job}.each-17.notify@acme.test>`);
    expect(emailMessageId(job, 'route.then.mail', 'ops@acme.test')).not.toBe(emailMessageId(job, 'route.else.mail', 'ops@acme.test'));
    expect(emailMessageId(job, 'each[1].notify', 'a@b.c')).not.toBe(emailMessageId(job, 'each[2].notify', 'a@b.c'));
  });
});

describe('SMTP failures', () => {
  const where = 'SMTP server mx:25';
  it.each([
    [{ code: 'EENVELOPE', responseCode: 550, response: '550 no such user', command: 'RCPT TO' }, 'EMAIL_REJECTED'],
    [{ code: 'EMESSAGE', responseCode: 552, response: '552 too big', command: 'DATA' }, 'EMAIL_REJECTED'],
    [{ code: 'EMESSAGE', responseCode: 451, response: '451 later', command: 'DATA' }, 'EMAIL_DEFERRED'],
    [{ code: 'EPROTOCOL', responseCode: 421, response: '421 busy' }, 'EMAIL_DEFERRED'],
    [{ code: 'EAUTH', responseCode: 535, response: '535 bad credentials', command: 'AUTH PLAIN' }, 'EMAIL_AUTH'],
    [{ code: 'ECONNECTION', message: 'connect ECONNREFUSED' }, 'EMAIL_CONNECTION'],
    [{ code: 'ETIMEDOUT', message: 'Greeting never received' }, 'EMAIL_CONNECTION'],
  ])('%j → %s', (err, code) => {
    const mapped = smtpStepError(Object.assign(new Error((err as { message?: string }).message ?? 'failed'), err), where);
    expect(mapped.code).toBe(code);
    expect(mapped.data).toMatchObject({ smtpCode: (err as { responseCode?: number }).responseCode ?? null });
    expect(mapped.message.startsWith(where)).toBe(true);
  });
});

describe('smtp credential', () => {
  it('reads host, port (number or digits), secure (default: port 465) and the login', () => {
    expect(smtpSettings('m', 'smtp', { host: 'mx', port: '465', from: 'a@x.org' })).toMatchObject({ port: 465, secure: true, user: undefined });
    expect(smtpSettings('m', 'smtp', { host: 'mx', port: 587, from: 'a@x.org', user: 'u', password: 'p' })).toMatchObject({ secure: false, user: 'u', password: 'p' });
  });

  it.each([
    [{ port: 25, from: 'a@x.org' }, 'host'],
    [{ host: 'mx', port: 0, from: 'a@x.org' }, 'port'],
    [{ host: 'mx', port: 'smtp', from: 'a@x.org' }, 'port'],
    [{ host: 'mx', port: 25 }, 'from'],
    [{ host: 'mx', port: 25, from: 'a@x.org', password: 'p' }, 'user'],
  ])('%j fails EMAIL_CREDENTIAL_INVALID naming %s', (secret, field) => {
    const err = failure(() => smtpSettings('m', 'smtp', secret));
    expect(err.code).toBe('EMAIL_CREDENTIAL_INVALID');
    expect(err.data).toEqual({ field });
  });

  it('refuses a credential of another provider', () => {
    expect(failure(() => smtpSettings('m', 'openai', { apiKey: 'k' })).data).toEqual({ field: 'provider' });
  });
});

describe('size budget', () => {
  it('fails EMAIL_TOO_LARGE at the part that passes 20 MiB, naming it', () => {
    const budget = new ByteBudget();
    budget.add(MAX_EMAIL_BYTES - 10, 'text');
    budget.add(10, 'html');
    const err = failure(() => budget.add(1, 'attachments[0]'));
    expect(err.code).toBe('EMAIL_TOO_LARGE');
    expect(err.data).toEqual({ bytes: MAX_EMAIL_BYTES + 1, limit: MAX_EMAIL_BYTES, part: 'attachments[0]' });
  });
});
