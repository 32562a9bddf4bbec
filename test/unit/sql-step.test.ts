import { describe, expect, it } from 'vitest';
import { StepError } from '../../src/engine/steps/types.js';
import { pgParam } from '../../src/engine/steps/sql/postgres.js';
import { mysqlParam } from '../../src/engine/steps/sql/mysql.js';
import { jsonSafe, RowCollector } from '../../src/engine/steps/sql/rows.js';
import { scrubber, sqlTarget } from '../../src/engine/steps/sql/target.js';
import { connectionFailure, statementFailure } from '../../src/engine/steps/sql/errors.js';

describe('sql step: connection strings', () => {
  it('scrubs the password as written, %-decoded, and the whole string', () => {
    const url = 'postgres://app:p%40ss-W0rd@db.internal:5432/crm?sslpassword=key-pass';
    const scrub = scrubber(url);
    const echoed = `could not connect with ${url}: auth failed for p@ss-W0rd (p%40ss-W0rd), key key-pass`;
    const out = scrub(echoed);
    expect(out).not.toContain('p@ss-W0rd');
    expect(out).not.toContain('p%40ss-W0rd');
    expect(out).not.toContain('key-pass');
    expect(out).toContain('could not connect with [REDACTED]');
  });

  it('finds the password of a string URL parsing refuses', () => {
    expect(scrubber('postgres://u:hunter22@[bad/db')('host [bad, password hunter22')).toBe('host [bad, password [REDACTED]');
  });

  it('checks provider, scheme and parameters, never echoing the string', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(StepError);
        expect((err as StepError).message).not.toContain('s3cret-pw');
        return (err as StepError).code;
      }
      return 'none';
    };
    expect(code(() => sqlTarget('c', 'openai', { connectionString: 'postgres://u:s3cret-pw@h/db' }))).toBe('SQL_CREDENTIAL');
    expect(code(() => sqlTarget('c', 'postgres', { connectionString: 'mysql://u:s3cret-pw@h/db' }))).toBe('SQL_CREDENTIAL');
    expect(code(() => sqlTarget('c', 'postgres', { connectionString: 'not a url s3cret-pw' }))).toBe('SQL_CREDENTIAL');
    expect(code(() => sqlTarget('c', 'mysql', { connectionString: 'mysql://u:s3cret-pw@h/db?multipleStatements=true' }))).toBe('SQL_CREDENTIAL');
    expect(code(() => sqlTarget('c', 'mysql', { url: 'mysql://u:s3cret-pw@h/db' }))).toBe('SQL_CREDENTIAL');
    const ok = sqlTarget('c', 'mysql', { connectionString: 'mariadb://app:p%40ss@[::1]/shop?sslmode=verify-full' });
    expect(ok).toMatchObject({ engine: 'mysql', host: '::1', port: 3306, user: 'app', password: 'p@ss', database: 'shop', tls: 'verified' });
  });

  it('maps driver errors to codes with the SQLSTATE or errno, scrubbed', () => {
    const pgT = sqlTarget('c', 'postgres', { connectionString: 'postgres://u:s3cret-pw@h/db' });
    const myT = sqlTarget('c', 'mysql', { connectionString: 'mysql://u:s3cret-pw@h/db' });
    const pgErr = (code: string, message = 'boom') => Object.assign(new Error(message), { code, severity: 'ERROR' });
    expect(statementFailure(pgErr('25006'), pgT, 1000).code).toBe('SQL_READ_ONLY');
    expect(statementFailure(pgErr('57014'), pgT, 1000).code).toBe('SQL_TIMEOUT');
    expect(statementFailure(pgErr('57P01'), pgT, 1000).code).toBe('SQL_CONNECTION');
    // 08P01 is a protocol violation (e.g. a wrong number of parameters), not a lost connection.
    expect(statementFailure(pgErr('08P01'), pgT, 1000).code).toBe('SQL_ERROR');
    const syntax = statementFailure(pgErr('42601', 'near s3cret-pw'), pgT, 1000);
    expect(syntax.code).toBe('SQL_ERROR');
    expect(syntax.data).toMatchObject({ sqlstate: '42601', engine: 'postgres' });
    expect(syntax.message).not.toContain('s3cret-pw');
    // A Node network code of five letters is not a SQLSTATE.
    expect(statementFailure(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), pgT, 1000).code).toBe('SQL_CONNECTION');
    const my = (errno: number) => Object.assign(new Error('x'), { errno, sqlState: 'HY000', code: 'ER_X' });
    expect(statementFailure(my(1792), myT, 1000).code).toBe('SQL_READ_ONLY');
    expect(statementFailure(my(1969), myT, 1000).code).toBe('SQL_TIMEOUT');
    expect(statementFailure(my(3024), myT, 1000).code).toBe('SQL_TIMEOUT');
    expect(statementFailure(my(2013), myT, 1000).code).toBe('SQL_CONNECTION');
    expect(statementFailure(my(1064), myT, 1000)).toMatchObject({ code: 'SQL_ERROR', data: { errno: 1064, sqlstate: 'HY000' } });
    const refused = connectionFailure(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:5432 via postgres://u:s3cret-pw@h/db'), { code: 'ECONNREFUSED' }), pgT);
    expect(refused.code).toBe('SQL_CONNECTION');
    expect(refused.message).not.toContain('s3cret-pw');
    expect(refused.data).toMatchObject({ driverCode: 'ECONNREFUSED' });
  });
});

describe('sql step: values', () => {
  it('binds JSON values: arrays as PostgreSQL array literals, objects as JSON text', () => {
    expect(pgParam(null)).toBeNull();
    expect(pgParam(undefined)).toBeNull();
    expect(pgParam(42)).toBe('42');
    expect(pgParam(true)).toBe('true');
    expect(pgParam({ a: 1 })).toBe('{"a":1}');
    expect(pgParam([1, 'two "q" \\', null, [3]])).toBe('{"1","two \\"q\\" \\\\",NULL,{"3"}}');
    expect(mysqlParam([1, 2])).toBe('[1,2]');
    expect(mysqlParam({ a: 1 })).toBe('{"a":1}');
    expect(mysqlParam(7)).toBe(7);
  });

  it('makes driver values JSON-safe', () => {
    expect(jsonSafe(10n ** 20n)).toBe('100000000000000000000');
    expect(jsonSafe(new Date('2024-01-02T03:04:05.678Z'))).toBe('2024-01-02T03:04:05.678Z');
    expect(jsonSafe(Buffer.from([0xde, 0xad]))).toBe('3q0=');
    expect(jsonSafe(Number.POSITIVE_INFINITY)).toBe('Infinity');
    expect(jsonSafe({ at: new Date(0), list: [1n] })).toEqual({ at: '1970-01-01T00:00:00.000Z', list: ['1'] });
  });

  it('collects up to maxRows, then up to the byte bound, and says truncated', () => {
    const rows = new RowCollector(2, 10_000);
    rows.setFields(['a', 'a', 'b']);
    expect(rows.add([1, 2, 3])).toBe(true);
    expect(rows.add([4, 5, 6])).toBe(true);
    expect(rows.add([7, 8, 9])).toBe(false);
    expect(rows.output()).toEqual({ rows: [{ a: 2, b: 3 }, { a: 5, b: 6 }], rowCount: 2, truncated: true, fields: [{ name: 'a' }, { name: 'a' }, { name: 'b' }] });
    const exact = new RowCollector(2, 10_000);
    exact.setFields(['x']);
    exact.add([1]);
    exact.add([2]);
    expect(exact.output().truncated).toBe(false);

    const bytes = new RowCollector(100, 30);
    bytes.setFields(['s']);
    expect(bytes.add(['x'.repeat(10)])).toBe(true); // [{"s":"xxxxxxxxxx"}] = 20 bytes
    expect(bytes.add(['y'.repeat(10)])).toBe(false);
    expect(bytes.output()).toMatchObject({ rowCount: 1, truncated: true });
  });
});
