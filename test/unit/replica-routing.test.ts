import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { initialReadTarget, PrimaryRequired, requirePrimary, retriesOnPrimary } from '../../src/api/tenancy.js';
import { loadConfig } from '../../src/config/index.js';
import { mapDbError, NO_REPLICA_STATUS, ReadOnlyTransactionError, replicaStatus } from '../../src/db/index.js';
import { DatabaseError, ForbiddenError, NotFoundError, QueryTimeoutError, ValidationError } from '../../src/errors/index.js';

const usable = { usable: () => true };
const unusable = { usable: () => false };

describe('where a request reads', () => {
  it('opens on the replica only for a route that opted in, with a replica usable now', () => {
    expect(initialReadTarget('replica', usable)).toBe('replica');
    expect(initialReadTarget('replica', unusable)).toBe('primary');
    expect(initialReadTarget('replica', undefined)).toBe('primary');
    expect(initialReadTarget(undefined, usable)).toBe('primary');
  });

  it('requirePrimary stops a handler on the replica and does nothing on the primary', () => {
    const onReplica = { readsFrom: 'replica' } as FastifyRequest;
    const onPrimary = { readsFrom: 'primary' } as FastifyRequest;
    expect(() => requirePrimary(onReplica, 'job is RUNNING')).toThrow(PrimaryRequired);
    expect(() => requirePrimary(onPrimary, 'job is RUNNING')).not.toThrow();
  });
});

describe('which failures on the replica are asked again of the primary', () => {
  it('a refused write (25006) is a typed error, still a database error', () => {
    const err = mapDbError({ code: '25006', message: 'cannot execute INSERT in a read-only transaction' });
    expect(err).toBeInstanceOf(ReadOnlyTransactionError);
    expect(err).toBeInstanceOf(DatabaseError);
    expect(retriesOnPrimary(err)).toBe(true);
  });

  it('the replica being gone, shutting down or cancelling for replay, a not-found, and the handler’s own request', () => {
    expect(retriesOnPrimary(mapDbError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5433'), { code: 'ECONNREFUSED' })))).toBe(true);
    expect(retriesOnPrimary(mapDbError(new Error('Connection terminated unexpectedly')))).toBe(true);
    expect(retriesOnPrimary(mapDbError({ code: '57P01', message: 'terminating connection due to administrator command' }))).toBe(true);
    expect(retriesOnPrimary(mapDbError({ code: '40001', message: 'canceling statement due to conflict with recovery' }))).toBe(true);
    expect(retriesOnPrimary(new NotFoundError('job', 'x'))).toBe(true);
    expect(retriesOnPrimary(new PrimaryRequired('job is RUNNING'))).toBe(true);
  });

  it('answers that the primary would give too are not retried', () => {
    expect(retriesOnPrimary(mapDbError({ code: '57014', message: 'canceling statement due to statement timeout' }))).toBe(false);
    expect(mapDbError({ code: '57014' })).toBeInstanceOf(QueryTimeoutError);
    expect(retriesOnPrimary(new ValidationError('bad', { path: '/querystring/limit' }))).toBe(false);
    expect(retriesOnPrimary(new ForbiddenError('no'))).toBe(false);
    expect(retriesOnPrimary(new TypeError('bug'))).toBe(false);
  });
});

describe('replica settings', () => {
  const server = { DATABASE_URL: 'postgres://u@db:5432/stepwise' };

  it('are absent unless STEPWISE_READ_DATABASE_URL is set; defaults 5 s and 10 connections', () => {
    expect(loadConfig(server).readReplica).toBeUndefined();
    expect(loadConfig({ ...server, STEPWISE_READ_DATABASE_URL: 'postgres://u@replica:5432/stepwise' }).readReplica).toEqual({
      url: 'postgres://u@replica:5432/stepwise',
      maxLagMs: 5_000,
      poolSize: 10,
    });
    expect(loadConfig({ ...server, STEPWISE_READ_DATABASE_URL: 'postgresql://r/s', STEPWISE_REPLICA_MAX_LAG_MS: '250', STEPWISE_READ_DB_POOL_SIZE: '4' }).readReplica).toMatchObject({
      maxLagMs: 250,
      poolSize: 4,
    });
  });

  it('refuse a replica without a server to stream from (PGlite), naming the variable', () => {
    expect(() => loadConfig({ STEPWISE_READ_DATABASE_URL: 'postgres://u@replica/stepwise' })).toThrow(/STEPWISE_READ_DATABASE_URL needs DATABASE_URL/);
  });

  it('refuse a URL that is not PostgreSQL’s and a lag bound out of range', () => {
    expect(() => loadConfig({ ...server, STEPWISE_READ_DATABASE_URL: 'mysql://r/s' })).toThrow(/STEPWISE_READ_DATABASE_URL must start with postgres/);
    for (const bad of ['99', '3600001', '5s']) {
      expect(() => loadConfig({ ...server, STEPWISE_READ_DATABASE_URL: 'postgres://r/s', STEPWISE_REPLICA_MAX_LAG_MS: bad })).toThrow(/STEPWISE_REPLICA_MAX_LAG_MS must be an integer between 100 and 3600000/);
    }
    expect(() => loadConfig({ ...server, STEPWISE_READ_DATABASE_URL: 'postgres://r/s', STEPWISE_READ_DB_POOL_SIZE: '0' })).toThrow(/STEPWISE_READ_DB_POOL_SIZE/);
  });

  it('without a replica, the status reports it as not configured', () => {
    expect(replicaStatus(undefined)).toEqual({ configured: false, lagSeconds: null, usingReplica: false, readsOnReplica: 0, readsOnPrimary: 0 });
    expect(replicaStatus(undefined)).not.toBe(NO_REPLICA_STATUS);
  });
});
