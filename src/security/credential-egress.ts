import { ValidationError } from '../errors/index.js';
import { describeClass, type EgressPolicy } from '../net/address-policy.js';
import { parseHost } from '../net/ip.js';

/**
 * The save-time half of the egress policy for credentials: a credential
 * whose secret names where to connect (an AI provider's baseUrl, an SMTP
 * host, a database connection string) is refused with a 400 when that place
 * is an address the policy refuses (127.0.0.1, 10.1.2.3, [::1],
 * 169.254.169.254, 2130706433, …) or `localhost`. A DNS name is not resolved
 * here: what it resolves to at save time says nothing about the run that
 * connects later, so every connection checks it again (net/egress.ts).
 */

/** Where a credential's secret says to connect, and the field that says it. */
export interface CredentialEndpoint {
  field: string;
  host: string;
  port: number;
}

const URL_FIELD: Record<string, { field: string; ports: Record<string, number> }> = {
  openai: { field: 'baseUrl', ports: { 'http:': 80, 'https:': 443 } },
  anthropic: { field: 'baseUrl', ports: { 'http:': 80, 'https:': 443 } },
  postgres: { field: 'connectionString', ports: { 'postgres:': 5432, 'postgresql:': 5432 } },
  mysql: { field: 'connectionString', ports: { 'mysql:': 3306, 'mariadb:': 3306 } },
};

/** Default SMTP port when the secret gives none (submission). */
const SMTP_DEFAULT_PORT = 587;

/**
 * The endpoint a provider's secret names, or null when it names none (or
 * none this check can read: the step that uses the credential reports a
 * malformed secret in its own words).
 */
export function credentialEndpoint(provider: string, secret: Readonly<Record<string, unknown>>): CredentialEndpoint | null {
  if (provider === 'smtp') {
    const host = secret.host;
    if (typeof host !== 'string' || host.trim() === '') return null;
    const port = Number(secret.port ?? SMTP_DEFAULT_PORT);
    return { field: 'host', host: host.trim(), port: Number.isInteger(port) ? port : SMTP_DEFAULT_PORT };
  }
  const spec = URL_FIELD[provider];
  const text = spec ? secret[spec.field] : undefined;
  if (!spec || typeof text !== 'string' || text === '') return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  const port = url.port ? Number(url.port) : spec.ports[url.protocol];
  if (port === undefined || url.hostname === '') return null;
  return { field: spec.field, host: url.hostname, port };
}

/**
 * Throws a ValidationError naming the secret's field when the policy
 * refuses the address or loopback name it names. Never echoes the field's
 * value (a connection string holds a password): only its host.
 */
export function assertCredentialEgress(policy: EgressPolicy, provider: string, secret: Readonly<Record<string, unknown>>): void {
  const endpoint = credentialEndpoint(provider, secret);
  if (!endpoint) return;
  const path = `/body/secret/${endpoint.field}`;
  const refuse = (reason: string, detail: string): never => {
    throw new ValidationError(`${path} names ${endpoint.host}, which the egress policy refuses: ${detail} (an operator admits it with STEPWISE_EGRESS_ALLOW)`, {
      path,
      host: endpoint.host,
      reason,
    });
  };
  const checked = policy.checkHost(endpoint.host, endpoint.port);
  if (!checked.admitted) {
    if (checked.reason === 'invalid-host') return; // not an address or a name: the step reports it when it runs
    refuse(checked.reason, `it is ${describeClass(checked.reason)}`);
  }
  const parsed = parseHost(endpoint.host);
  if (parsed.kind !== 'ip') return;
  const verdict = policy.decide(endpoint.host, endpoint.port, parsed.ip);
  if (!verdict.admitted) refuse(verdict.reason, `it is ${describeClass(verdict.reason)}`);
}
