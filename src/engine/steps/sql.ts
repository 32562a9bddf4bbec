import type { StepBase } from '../../model/definition.js';
import { compileExpression, evaluate } from '../definition/expressions.js';
import { runMysql } from './sql/mysql.js';
import { runPostgres } from './sql/postgres.js';
import { CLIENT_GRACE_MS, CONNECT_TIMEOUT_MS } from './sql/request.js';
import type { SqlOutput } from './sql/rows.js';
import { sqlTarget } from './sql/target.js';
import { connectionFailure } from './sql/errors.js';
import type { CheckedTarget } from '../../net/egress.js';
import { EgressUnreachableError } from '../../net/errors.js';
import { noChildren, noExtraChecks, StepError, type StepContext, type StepType } from './types.js';

export type { SqlOutput } from './sql/rows.js';

/**
 * One read-only, parameterised statement against a PostgreSQL or
 * MySQL/MariaDB database named by a credential (provider `postgres` or
 * `mysql`, secret `{ connectionString }`). `params` are JSONata expressions
 * over the step's scope, bound as $1… / ? parameters, never spliced into the
 * text. Output `{ rows, rowCount, truncated, fields }`.
 */
export interface SqlStep extends StepBase {
  type: 'sql';
  credential: string;
  query: string;
  params?: string[];
  /** Rows kept (default 1,000, at most 10,000); past it the output says truncated. */
  maxRows?: number;
}

export const SQL_DEFAULT_MAX_ROWS = 1_000;
export const SQL_MAX_ROWS = 10_000;
export const SQL_DEFAULT_TIMEOUT_MS = 30_000;
/** A statement a workflow waits on longer than this belongs in a report job, not a step. */
export const SQL_MAX_TIMEOUT_MS = 10 * 60_000;
export const SQL_MAX_PARAMS = 100;

export const sqlStep: StepType<SqlStep> = {
  type: 'sql',
  properties: {
    credential: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    query: { type: 'string', minLength: 1, maxLength: 100_000, pattern: '\\S' },
    params: { type: 'array', maxItems: SQL_MAX_PARAMS, items: { type: 'string', minLength: 1, maxLength: 10_000 } },
    maxRows: { type: 'integer', minimum: 1, maximum: SQL_MAX_ROWS },
    // The statement's bound (given to the database), narrower than the common timeoutMs.
    timeoutMs: { type: 'integer', minimum: 1, maximum: SQL_MAX_TIMEOUT_MS },
  },
  required: ['credential', 'query'],
  sources: (step) => ({ expressions: Object.fromEntries((step.params ?? []).map((text, i) => [`params/${i}`, text])) }),
  validate: noExtraChecks,
  credentials: (step) => [step.credential],
  children: noChildren,
  block: false,
  // The engine's timer is only a backstop: the statement's own timeout, the connect bound and the client's grace come first, each with its own code.
  attemptTimeoutMs: (step) => (step.timeoutMs ?? SQL_DEFAULT_TIMEOUT_MS) + CONNECT_TIMEOUT_MS + 2 * CLIENT_GRACE_MS,
  /*
   * false: the statement runs in a read-only transaction the database
   * enforces (a write fails SQL_READ_ONLY and changes nothing), so running
   * it again after a crash — what sideEffects guards against — is just
   * reading again, and the commit before each attempt (and the rate-limit
   * wait of side-effecting steps) would be paid for nothing. What a read-only
   * transaction does not stop needs privileges the credential's database user
   * should not have (a procedure that commits and writes, dblink, SELECT …
   * INTO OUTFILE, COPY TO a server file): give it SELECT only.
   */
  sideEffects: false,
  abortable: true,
  // A compensation undoes; a read cannot.
  compensation: false,
  run: runSql,
};

async function runSql(step: SqlStep, ctx: StepContext): Promise<SqlOutput> {
  const { provider, secret } = ctx.credential(step.credential);
  const target = sqlTarget(step.credential, provider, secret);
  const params: unknown[] = [];
  for (const [i, text] of (step.params ?? []).entries()) {
    const value = await evaluate(compileExpression(text, `steps.${step.id}.params/${i}`), ctx.scope);
    if (typeof value === 'function') throw new StepError('SQL_PARAM', `params/${i} evaluated to a function, not a value to bind`, { param: i });
    params.push(value === undefined ? null : value);
  }
  let checked: CheckedTarget;
  try {
    // A refusal (EgressDeniedError) fails the step EGRESS_DENIED; a name that does not resolve is a connection failure.
    checked = await ctx.net.resolve(target.host, target.port);
  } catch (err) {
    if (err instanceof EgressUnreachableError) throw connectionFailure(err, target);
    throw err;
  }
  const driver = target.engine === 'postgres' ? runPostgres : runMysql;
  return driver({
    target,
    checked,
    query: step.query,
    params,
    maxRows: step.maxRows ?? SQL_DEFAULT_MAX_ROWS,
    maxBytes: ctx.limits.httpMaxResponseBytes,
    timeoutMs: step.timeoutMs ?? SQL_DEFAULT_TIMEOUT_MS,
    signal: ctx.signal,
  });
}
