import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_AFTER_SECONDS, installErrorHandling, retryAfterSeconds, statusFor } from '../../src/api/errors.js';
import { retriesOnPrimary } from '../../src/api/tenancy.js';
import {
  DATABASE_RETRY_AFTER_SECONDS,
  DatabaseUnavailableError,
  isDatabaseUnavailable,
  mapConnectError,
  mapDbError,
  unavailableReason,
} from '../../src/db/index.js';
import { ConflictError, DatabaseError, QueryTimeoutError, UnavailableError, ValidationError } from '../../src/errors/index.js';
import { createLogger } from '../../src/util/logger.js';

/** A Node system error as net.connect or a socket write reports it. */
function systemError(code: string, message = `connect ${code} 10.0.0.5:5432`): Error {
  return Object.assign(new Error(message), { code, errno: -1, syscall: 'connect' });
}

/** A PostgreSQL ErrorResponse as pg delivers it: the SQLSTATE in `code`. */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, severity: 'FATAL' });
}

describe('the database unreachable is a 503 with Retry-After, not a 500', () => {
  it.each([
    ['connection refused', systemError('ECONNREFUSED'), 'unreachable'],
    ['host not found', systemError('ENOTFOUND', 'getaddrinfo ENOTFOUND db.internal'), 'unreachable'],
    ['connect timed out (OS)', systemError('ETIMEDOUT'), 'connect-timeout'],
    ['connection reset', systemError('ECONNRESET', 'read ECONNRESET'), 'connection-lost'],
    ['write to a closed socket', systemError('EPIPE', 'write EPIPE'), 'connection-lost'],
    ['pg_terminate_backend / fast shutdown (57P01)', pgError('57P01', 'terminating connection due to administrator command'), 'restarting'],
    ['immediate shutdown of another backend (57P02)', pgError('57P02', 'terminating connection because of crash of another server process'), 'restarting'],
    ['starting up or recovering (57P03)', pgError('57P03', 'the database system is starting up'), 'restarting'],
    ['no connection slot left (53300)', pgError('53300', 'sorry, too many clients already'), 'too-many-connections'],
    ['connection exception, class 08 (08006)', pgError('08006', 'connection failure'), 'connection-lost'],
    ['connection does not exist (08003)', pgError('08003', 'connection does not exist'), 'connection-lost'],
    ['pg: the server closed the socket', new Error('Connection terminated unexpectedly'), 'connection-lost'],
    ['pg: a query on a broken client', new Error('Client has encountered a connection error and is not queryable'), 'connection-lost'],
    ['pg: the pool’s connect timer', new Error('Connection terminated due to connection timeout'), 'connect-timeout'],
    ['pg-pool: a checkout that waited too long', new Error('timeout exceeded when trying to connect'), 'checkout-timeout'],
    [
      'a name with two addresses, both refused (AggregateError)',
      Object.assign(new AggregateError([systemError('ECONNREFUSED'), systemError('ECONNREFUSED')], ''), { code: 'ECONNREFUSED' }),
      'unreachable',
    ],
    ['AggregateError without a code of its own', new AggregateError([new Error('x'), systemError('EHOSTUNREACH')], ''), 'unreachable'],
  ])('%s', (_what, raw, reason) => {
    const err = mapDbError(raw);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).not.toBeInstanceOf(DatabaseError);
    expect(isDatabaseUnavailable(err)).toBe(true);
    const typed = err as DatabaseUnavailableError;
    expect(typed.code).toBe('UNAVAILABLE');
    expect(statusFor(typed.code)).toBe(503);
    expect(typed.details).toMatchObject({ reason, retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS });
    expect(typed.cause).toBe(raw);
    // The driver's text (addresses, host names) stays in the cause, out of the message a client sees.
    expect(typed.message).not.toMatch(/10\.0\.0\.5|db\.internal|ECONN/);
    expect(unavailableReason(raw)).toBe(reason);
  });

  it('a small wait, within the 1–5 s a client should be asked for', () => {
    expect(DATABASE_RETRY_AFTER_SECONDS).toBeGreaterThanOrEqual(1);
    expect(DATABASE_RETRY_AFTER_SECONDS).toBeLessThanOrEqual(5);
  });

  it('answers about the statement keep their types: nothing there passes by waiting', () => {
    expect(mapDbError(pgError('23505', 'duplicate key value'))).toBeInstanceOf(ConflictError);
    expect(mapDbError(pgError('22P02', 'invalid input syntax for type uuid'))).toBeInstanceOf(ValidationError);
    expect(mapDbError(pgError('57014', 'canceling statement due to statement timeout'))).toBeInstanceOf(QueryTimeoutError);
    // Deadlock, a wrong password, an unknown database: still a DatabaseError (500), not an outage.
    for (const [code, message] of [
      ['40P01', 'deadlock detected'],
      ['28P01', 'password authentication failed for user "x"'],
      ['3D000', 'database "nope" does not exist'],
      ['XX000', 'internal error'],
    ] as const) {
      const err = mapDbError(pgError(code, message));
      expect(err, code).toBeInstanceOf(DatabaseError);
      expect(isDatabaseUnavailable(err), code).toBe(false);
    }
    // Texts are matched exactly: a statement's own error that merely mentions a connection is not an outage.
    expect(mapDbError(new Error('Connection terminated unexpectedly while reading config'))).toBeInstanceOf(DatabaseError);
    expect(unavailableReason('ECONNREFUSED')).toBeUndefined();
    expect(unavailableReason(null)).toBeUndefined();
  });

  it('a typed error passes through as it is', () => {
    const err = new DatabaseUnavailableError('checkout-timeout', { waitedMs: 5_000 });
    expect(mapDbError(err)).toBe(err);
    expect(unavailableReason(err)).toBe('checkout-timeout');
    expect(err.details).toEqual({ waitedMs: 5_000, reason: 'checkout-timeout', retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS });
  });

  it('opening a connection: no answer from the server is unavailable; the server refusing our credentials is not', () => {
    const timedOut = mapConnectError(new Error('timeout expired'));
    expect(timedOut).toBeInstanceOf(DatabaseUnavailableError);
    expect((timedOut as DatabaseUnavailableError).details.reason).toBe('connect-timeout');
    expect((mapConnectError(new Error('Connection terminated unexpectedly')) as DatabaseUnavailableError).details.reason).toBe('connection-lost');
    expect((mapConnectError(pgError('57P03', 'the database system is starting up')) as DatabaseUnavailableError).details.reason).toBe('restarting');
    for (const refusal of [pgError('28P01', 'password authentication failed'), pgError('3D000', 'database "x" does not exist')]) {
      const err = mapConnectError(refusal);
      expect(err).toBeInstanceOf(DatabaseError);
      expect(isDatabaseUnavailable(err)).toBe(false);
    }
  });

  it('a replica that is unreachable sends the request to the primary', () => {
    expect(retriesOnPrimary(mapDbError(systemError('ECONNREFUSED')))).toBe(true);
    expect(retriesOnPrimary(new DatabaseUnavailableError('checkout-timeout'))).toBe(true);
  });
});

describe('every 503 carries Retry-After', () => {
  async function answer(err: Error): Promise<{ status: number; retryAfter: string | undefined; body: { error: { code: string; message: string; details: Record<string, unknown> } } }> {
    const app = Fastify();
    installErrorHandling(app, createLogger('silent'), 1024);
    app.get('/', async () => {
      throw err;
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/' });
      return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, body: res.json() };
    } finally {
      await app.close();
    }
  }

  it('the database unavailable: 503, Retry-After its own seconds, the reason but not the driver’s text', async () => {
    const res = await answer(mapDbError(systemError('ECONNREFUSED')));
    expect(res.status).toBe(503);
    expect(res.retryAfter).toBe(String(DATABASE_RETRY_AFTER_SECONDS));
    expect(res.body.error.code).toBe('UNAVAILABLE');
    expect(res.body.error.message).toMatch(/database is unavailable \(unreachable\)/);
    expect(res.body.error.details).toEqual({ retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS });
  });

  it('another 503 (a query past its budget) gets the default wait', async () => {
    const res = await answer(new QueryTimeoutError('the query ran past its time budget', { sqlstate: '57014' }));
    expect(res.status).toBe(503);
    expect(res.retryAfter).toBe(String(DEFAULT_RETRY_AFTER_SECONDS));
    expect(res.body.error.details).toEqual({ retryAfterSeconds: DEFAULT_RETRY_AFTER_SECONDS });
  });

  it('a 500 has none, and says nothing of the failure', async () => {
    const res = await answer(mapDbError(pgError('XX000', 'could not read block 7 of relation base/5/16384')));
    expect(res.status).toBe(500);
    expect(res.retryAfter).toBeUndefined();
    expect(res.body.error).toEqual({ code: 'DATABASE', message: 'internal error', details: {} });
  });

  it('retryAfterSeconds takes only a positive whole number from the details', () => {
    expect(retryAfterSeconds({ retryAfterSeconds: 3 })).toBe(3);
    for (const bad of [0, -1, 1.5, '3', null, undefined]) expect(retryAfterSeconds({ retryAfterSeconds: bad })).toBe(DEFAULT_RETRY_AFTER_SECONDS);
  });
});
