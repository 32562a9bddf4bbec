import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors/index.js';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { assertCredentialEgress, credentialEndpoint } from '../../src/security/credential-egress.js';

/** The save-time check of where a credential's secret says to connect. */

function refusal(policy: EgressPolicy, provider: string, secret: Record<string, unknown>): ValidationError {
  let caught: unknown = null;
  try {
    assertCredentialEgress(policy, provider, secret);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ValidationError);
  return caught as ValidationError;
}

describe('credentialEndpoint', () => {
  it.each([
    ['openai', { apiKey: 'k', baseUrl: 'https://api.openai.com/v1' }, { field: 'baseUrl', host: 'api.openai.com', port: 443 }],
    ['openai', { baseUrl: 'http://llm.example.com/v1' }, { field: 'baseUrl', host: 'llm.example.com', port: 80 }],
    ['openai', { baseUrl: 'https://llm.example.com:8443/v1' }, { field: 'baseUrl', host: 'llm.example.com', port: 8443 }],
    ['anthropic', { baseUrl: 'https://api.anthropic.com' }, { field: 'baseUrl', host: 'api.anthropic.com', port: 443 }],
    ['anthropic', { baseUrl: 'http://[2606:4700::1111]:8080/' }, { field: 'baseUrl', host: '[2606:4700::1111]', port: 8080 }],
    ['smtp', { host: 'smtp.example.com' }, { field: 'host', host: 'smtp.example.com', port: 587 }],
    ['smtp', { host: '  smtp.example.com ', port: 465 }, { field: 'host', host: 'smtp.example.com', port: 465 }],
    ['smtp', { host: 'smtp.example.com', port: '2525' }, { field: 'host', host: 'smtp.example.com', port: 2525 }],
    ['smtp', { host: 'smtp.example.com', port: 'submission' }, { field: 'host', host: 'smtp.example.com', port: 587 }],
    ['postgres', { connectionString: 'postgres://app:pw@db.example.com/app' }, { field: 'connectionString', host: 'db.example.com', port: 5432 }],
    ['postgres', { connectionString: 'postgresql://app:pw@db.example.com:6543/app?sslmode=require' }, { field: 'connectionString', host: 'db.example.com', port: 6543 }],
    ['mysql', { connectionString: 'mysql://app:pw@mysql.example.com/app' }, { field: 'connectionString', host: 'mysql.example.com', port: 3306 }],
    ['mysql', { connectionString: 'mariadb://app:pw@maria.example.com:3307/app' }, { field: 'connectionString', host: 'maria.example.com', port: 3307 }],
    ['mysql', { connectionString: 'mariadb://maria.example.com/app' }, { field: 'connectionString', host: 'maria.example.com', port: 3306 }],
  ])('%s %j names %j', (provider, secret, expected) => {
    expect(credentialEndpoint(provider, secret)).toEqual(expected);
  });

  it.each([
    ['slack', { baseUrl: 'http://127.0.0.1/', host: '127.0.0.1' }], // a provider that names no endpoint
    ['webhook', { connectionString: 'postgres://u:p@127.0.0.1/db' }],
    ['openai', { apiKey: 'k' }], // the provider's default endpoint
    ['openai', { baseUrl: '' }],
    ['openai', { baseUrl: 42 }],
    ['openai', { baseUrl: 'not a url' }],
    ['openai', { baseUrl: 'ftp://api.example.com/' }], // a scheme the provider does not speak
    ['anthropic', { baseUrl: '/v1/messages' }],
    ['smtp', {}],
    ['smtp', { host: '' }],
    ['smtp', { host: '   ' }],
    ['smtp', { host: ['127.0.0.1'] }],
    ['postgres', {}],
    ['postgres', { connectionString: 'host=127.0.0.1 user=app' }], // key=value form: not read here
    ['postgres', { connectionString: 'mysql://u:p@db.example.com/app' }], // another driver's scheme
    ['postgres', { connectionString: 'postgres:///app?host=/var/run/postgresql' }], // a socket, no host
    ['mysql', { connectionString: 'postgres://u:p@db.example.com/app' }],
    ['mysql', { connectionString: 'mysql://' }],
  ])('%s %j names nothing to check', (provider, secret) => {
    expect(credentialEndpoint(provider, secret)).toBeNull();
  });
});

describe('assertCredentialEgress', () => {
  const policy = new EgressPolicy();

  const refused: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['[::1]', 'loopback'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['10.0.0.5', 'private'],
    ['192.168.1.10', 'private'],
    ['169.254.169.254', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['localhost', 'loopback'],
    ['LOCALHOST', 'loopback'],
    ['db.localhost', 'loopback'],
  ];

  it.each(refused)('refuses an openai baseUrl on %s (%s)', (host, reason) => {
    const err = refusal(policy, 'openai', { apiKey: 'sk-1', baseUrl: `http://${host}:8080/v1` });
    expect(err.details.path).toBe('/body/secret/baseUrl');
    expect(err.details.reason).toBe(reason);
    expect(err.message).toContain('/body/secret/baseUrl');
    expect(err.message).not.toContain('sk-1');
  });

  it.each(refused)('refuses an smtp host %s (%s)', (host, reason) => {
    const err = refusal(policy, 'smtp', { host, user: 'mailer', pass: 'mail-pass' });
    expect(err.details.path).toBe('/body/secret/host');
    expect(err.details.reason).toBe(reason);
    expect(err.details.host).toBe(host);
    expect(err.message).not.toContain('mail-pass');
  });

  it.each(refused)('refuses a postgres connection string on %s (%s) without echoing its password', (host, reason) => {
    const password = 'Hunter2-s3cret';
    const err = refusal(policy, 'postgres', { connectionString: `postgres://admin:${password}@${host}:5432/app` });
    expect(err.details.path).toBe('/body/secret/connectionString');
    expect(err.details.reason).toBe(reason);
    expect(err.message).not.toContain(password);
    expect(err.message).not.toContain('admin:');
    expect(JSON.stringify(err.details)).not.toContain(password);
  });

  it.each(['mysql', 'mariadb'])('refuses a %s connection string on a private address', (scheme) => {
    const err = refusal(policy, 'mysql', { connectionString: `${scheme}://root:topsecret@10.0.0.5/app` });
    expect(err.details.path).toBe('/body/secret/connectionString');
    expect(err.details.reason).toBe('private');
    expect(err.message).not.toContain('topsecret');
  });

  it('names the host and the class, for the person fixing it', () => {
    const err = refusal(policy, 'anthropic', { baseUrl: 'https://169.254.169.254/' });
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toContain('169.254.169.254');
    expect(err.message).toContain('a cloud metadata address');
    expect(err.message).toContain('STEPWISE_EGRESS_ALLOW');
  });

  it.each([
    ['openai', { baseUrl: 'https://api.openai.com/v1' }],
    ['openai', { baseUrl: 'http://93.184.215.14:8080/v1' }],
    ['anthropic', { baseUrl: 'https://[2606:4700:4700::1111]/' }],
    ['smtp', { host: 'smtp.example.com', port: 25 }],
    ['smtp', { host: '8.8.8.8' }],
    ['postgres', { connectionString: 'postgres://u:p@db.example.com/app' }],
    // A name is not resolved at save time, whatever it would resolve to: each connection checks it.
    ['postgres', { connectionString: 'postgres://u:p@internal.corp.test/app' }],
    ['mysql', { connectionString: 'mysql://u:p@mysql.internal.test:3306/app' }],
    ['smtp', { host: 'localhost.example.com' }],
    // Nothing to check: the step reports what it cannot read when it runs.
    ['smtp', { host: 'not a host' }],
    ['openai', { apiKey: 'k' }],
    ['slack', { url: 'http://127.0.0.1/' }],
  ])('admits %s %j', (provider, secret) => {
    expect(() => assertCredentialEgress(policy, provider, secret)).not.toThrow();
  });

  it('admits what the policy names, on the port it names', () => {
    const allowed = new EgressPolicy('127.0.0.1:5432');
    expect(() => assertCredentialEgress(allowed, 'postgres', { connectionString: 'postgres://u:p@127.0.0.1:5432/app' })).not.toThrow();
    expect(() => assertCredentialEgress(allowed, 'postgres', { connectionString: 'postgres://u:p@127.0.0.1/app' })).not.toThrow(); // 5432 by default
    const err = refusal(allowed, 'postgres', { connectionString: 'postgres://u:p@127.0.0.1:5433/app' });
    expect(err.details.reason).toBe('loopback');
    // The entry is for 5432, not for any service on 127.0.0.1.
    expect(() => assertCredentialEgress(allowed, 'smtp', { host: '127.0.0.1' })).toThrow(ValidationError);
    expect(() => assertCredentialEgress(allowed, 'smtp', { host: '127.0.0.1', port: 5432 })).not.toThrow();
  });

  it('admits localhost only when the policy names it', () => {
    expect(() => assertCredentialEgress(new EgressPolicy('localhost:587'), 'smtp', { host: 'localhost' })).not.toThrow();
    expect(refusal(new EgressPolicy('localhost:587'), 'smtp', { host: 'localhost', port: 25 }).details.reason).toBe('loopback');
    expect(() => assertCredentialEgress(new EgressPolicy('10.0.0.0/8'), 'openai', { baseUrl: 'http://10.0.0.5/v1' })).not.toThrow();
    // A range does not admit a metadata address inside it.
    expect(refusal(new EgressPolicy('169.254.0.0/16'), 'openai', { baseUrl: 'http://169.254.169.254/' }).details.reason).toBe('metadata');
  });
});
