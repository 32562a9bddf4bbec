import { StepError } from '../types.js';

/**
 * Where an sql step connects: the engine its credential's provider names and
 * the credential's connection string, checked before any driver sees it.
 * Drivers are lenient in ways that hurt here: node-postgres reads "not a
 * url" as host "base", and mysql2 lets URL parameters override the options
 * it is given (`?multipleStatements=true` would win over our `false`), so
 * the string is parsed once here and only what is listed is honoured.
 */
export type SqlEngine = 'postgres' | 'mysql';

export interface SqlTarget {
  engine: SqlEngine;
  /** The credential's string as given (node-postgres takes it whole: sslmode, options, …). */
  connectionString: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** MySQL/MariaDB only: TLS from `?sslmode=require|verify-full` (PostgreSQL reads sslmode itself). */
  tls: 'off' | 'unverified' | 'verified';
  /** Removes the password (and the whole string) from text bound for errors and logs. */
  scrub: (text: string) => string;
}

const SCHEMES: Record<SqlEngine, readonly string[]> = {
  postgres: ['postgres:', 'postgresql:'],
  mysql: ['mysql:', 'mariadb:'],
};
const DEFAULT_PORT: Record<SqlEngine, number> = { postgres: 5432, mysql: 3306 };
/** The only URL parameter a MySQL/MariaDB connection string may carry. */
const MYSQL_SSLMODES = { disable: 'off', require: 'unverified', 'verify-full': 'verified' } as const;

/** Parameters that would move a PostgreSQL connection somewhere other than the URL's host:port. */
const POSTGRES_ADDRESS_PARAMS = new Set(['host', 'hostaddr', 'port']);

export const SQL_PROVIDERS: readonly string[] = ['postgres', 'mysql'];

const REDACTED = '[REDACTED]';
/** Shorter passwords are not searched for: "ab" would mangle every message, and the driver messages seen here never echo a password. */
const MIN_SCRUB_LENGTH = 3;

function fail(message: string, data: Record<string, unknown> = {}): never {
  throw new StepError('SQL_CREDENTIAL', message, data);
}

/** The sql target of a credential (`provider` postgres or mysql, secret `{ connectionString }`); SQL_CREDENTIAL when it is not one. */
export function sqlTarget(name: string, provider: string, secret: Readonly<Record<string, unknown>>): SqlTarget {
  if (provider !== 'postgres' && provider !== 'mysql') {
    fail(`credential "${name}" is a ${provider} credential; an sql step needs provider postgres or mysql`, { credential: name, provider });
  }
  const engine: SqlEngine = provider;
  const raw = secret.connectionString;
  if (typeof raw !== 'string' || raw.trim() === '') {
    fail(`credential "${name}" has no connectionString`, { credential: name });
  }
  const scrub = scrubber(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never the string itself: it holds the password.
    fail(`credential "${name}": connectionString is not a URL (expected ${SCHEMES[engine][0]}//user:password@host:port/database)`, { credential: name });
  }
  if (!SCHEMES[engine].includes(url.protocol)) {
    fail(`credential "${name}": a ${engine} connectionString starts with ${SCHEMES[engine].join(' or ')}//, not ${url.protocol}//`, { credential: name });
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return fail(`credential "${name}": connectionString has a malformed %-escape`, { credential: name });
    }
  };
  let tls: SqlTarget['tls'] = 'off';
  if (engine === 'postgres') {
    // node-postgres lets these parameters replace the URL's host and port: the egress policy checks the
    // URL's host, so a string that names another place to connect to is refused rather than half-checked.
    for (const key of url.searchParams.keys()) {
      if (POSTGRES_ADDRESS_PARAMS.has(key.toLowerCase())) {
        fail(`credential "${name}": a postgres connectionString names its host and port in the URL, not in ?${scrub(key)}=`, { credential: name });
      }
    }
  }
  if (engine === 'mysql') {
    for (const [key, value] of url.searchParams) {
      if (key !== 'sslmode' || !Object.hasOwn(MYSQL_SSLMODES, value)) {
        fail(`credential "${name}": a mysql connectionString takes only ?sslmode=disable|require|verify-full, not "${scrub(key)}"`, { credential: name });
      }
      tls = MYSQL_SSLMODES[value as keyof typeof MYSQL_SSLMODES];
    }
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') fail(`credential "${name}": connectionString names no host`, { credential: name });
  return {
    engine,
    connectionString: raw,
    host,
    port: url.port === '' ? DEFAULT_PORT[engine] : Number(url.port),
    database: decode(url.pathname.replace(/^\//, '')),
    user: decode(url.username),
    password: decode(url.password),
    tls,
    scrub,
  };
}

/**
 * Replaces the connection string and its password, as written and
 * %-decoded, plus any `password=` parameter. The engine's Redactor already
 * removes the whole secret value (the string) from what a step produces, but
 * not the password alone inside it.
 */
export function scrubber(connectionString: string): (text: string) => string {
  const secrets = new Set<string>([connectionString]);
  const add = (s: string) => {
    if (s.length >= MIN_SCRUB_LENGTH) secrets.add(s);
    try {
      const decoded = decodeURIComponent(s);
      if (decoded.length >= MIN_SCRUB_LENGTH) secrets.add(decoded);
    } catch {
      // a malformed escape: the raw form is enough
    }
  };
  // Parsed by hand as well as by URL: a string URL refuses still has a password to hide.
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(connectionString)?.[1];
  if (userinfo !== undefined && userinfo.includes(':')) add(userinfo.slice(userinfo.indexOf(':') + 1));
  for (const m of connectionString.matchAll(/[?&](?:password|sslpassword)=([^&#]*)/gi)) add(m[1]!);
  const list = [...secrets].sort((a, b) => b.length - a.length);
  return (text) => {
    let out = text;
    for (const s of list) if (out.includes(s)) out = out.replaceAll(s, REDACTED);
    return out;
  };
}
