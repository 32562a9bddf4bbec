import type mysql from 'mysql2';
import { connectionFailure, statementFailure } from './errors.js';
import { bounded, CONNECT_TIMEOUT_MS, type SqlRequest } from './request.js';
import { RowCollector, type SqlOutput } from './rows.js';
import { mysqlCheckedStream } from './checked-socket.js';

/**
 * The sql step on MySQL or MariaDB: a connection of its own per attempt
 * (multiple statements off, LOCAL INFILE off), the session made read-only
 * (`SET SESSION TRANSACTION READ ONLY`, so even DDL, whose implicit commit
 * would end the transaction, is refused) with the engine's statement
 * timeout (MariaDB `max_statement_time`, MySQL `max_execution_time`), then
 * `START TRANSACTION READ ONLY` and the statement as a server-side prepared
 * statement (the binary protocol binds the parameters; a prepared statement
 * is one statement). Rows stream in; once the collector is full the
 * connection is paused and destroyed, so a huge result is never loaded. A
 * statement stopped mid-way (abort, client-side timeout) is killed on the
 * server too.
 */
export async function runMysql(request: SqlRequest): Promise<SqlOutput> {
  // Loaded with the first MySQL query, not with the step registry that every CLI command imports (~0.3 s to load here).
  const { createConnection } = (await import('mysql2')).default;
  const { target, signal } = request;
  const options: mysql.ConnectionOptions = {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    database: target.database || undefined,
    connectTimeout: CONNECT_TIMEOUT_MS,
    multipleStatements: false,
    flags: ['-LOCAL_FILES', '-MULTI_STATEMENTS'],
    // BIGINT and DECIMAL as strings (no precision lost); DATE and DATETIME as the text they are (no zone); TIMESTAMP an instant in UTC.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: ['DATE', 'DATETIME'],
    timezone: 'Z',
    ...(target.tls === 'off' ? {} : { ssl: { rejectUnauthorized: target.tls === 'verified' } }),
    // host stays the name (TLS checks the certificate against it); the socket goes to the checked address.
    stream: mysqlCheckedStream(request.checked),
  };
  const core = createConnection(options);
  // Fatal errors reach the command in flight; without a listener an idle connection's error would crash the process.
  core.on('error', () => undefined);
  const conn = core.promise();
  const destroy = () => core.destroy();
  let healthy = false;
  try {
    try {
      await bounded(conn.connect(), signal, null, destroy);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw connectionFailure(err, target);
    }
    const work = (async () => {
      const [version] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
      const mariadb = /mariadb/i.test(String(version[0]?.v ?? ''));
      const ms = Math.max(1, Math.round(request.timeoutMs));
      // Our own text: numbers we computed. MariaDB takes seconds (microsecond precision), MySQL milliseconds.
      await conn.query(mariadb ? `SET SESSION max_statement_time = ${(ms / 1000).toFixed(3)}, time_zone = '+00:00'` : `SET SESSION max_execution_time = ${ms}, time_zone = '+00:00'`);
      await conn.query('SET SESSION TRANSACTION READ ONLY');
      await conn.query('START TRANSACTION READ ONLY');
      return streamRows(core, request);
    })();
    try {
      const output = await bounded(work, signal, request.timeoutMs, () => {
        killQuery(createConnection, options, core.threadId);
        destroy();
      });
      healthy = !output.truncated; // a cut result left rows in flight: that connection is destroyed, not ended
      return output;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw statementFailure(err, target, request.timeoutMs);
    }
  } finally {
    if (healthy) await conn.end().catch(() => undefined);
    else destroy();
  }
}

/**
 * Stop the statement running on thread `threadId` (`KILL QUERY`, from a
 * second connection of the same user). A server notices a closed client
 * only when it next reads or writes it (MariaDB's SLEEP polls every ~5 s, a
 * long scan not at all), so an aborted step would otherwise leave its
 * statement running on the tenant's database until max_statement_time.
 * Best effort: failures are ignored.
 */
function killQuery(createConnection: typeof mysql.createConnection, options: mysql.ConnectionOptions, threadId: number | null | undefined): void {
  if (typeof threadId !== 'number') return;
  const killer = createConnection({ ...options, connectTimeout: 5_000 });
  killer.on('error', () => undefined);
  // threadId is the server's number for our own connection, not text from anywhere else.
  killer.query(`KILL QUERY ${Math.trunc(threadId)}`, () => killer.end(() => undefined));
}

/** Execute the statement and collect rows as they arrive; only the first result set counts (a CALL may return more). */
function streamRows(core: mysql.Connection, request: SqlRequest): Promise<SqlOutput> {
  const rows = new RowCollector(request.maxRows, request.maxBytes);
  return new Promise((resolve, reject) => {
    const query = core.execute({ sql: request.query, rowsAsArray: true }, request.params.map(mysqlParam));
    query.on('fields', (fields: { name: string }[], index?: number) => {
      if ((index ?? 0) === 0) rows.setFields(fields.map((f) => f.name));
    });
    query.on('result', (row: unknown, index?: number) => {
      // A statement without a result set answers with an OK packet, not a row.
      if ((index ?? 0) !== 0 || !Array.isArray(row) || rows.full) return;
      if (!rows.add(row)) {
        // Full: stop reading now; the caller destroys the connection with the rest unread.
        core.pause();
        resolve(rows.output());
      }
    });
    query.on('error', reject);
    query.on('end', () => resolve(rows.output()));
  });
}

/** A JSON parameter for the binary protocol: objects and arrays as JSON text (JSON_TABLE, JSON_CONTAINS, ->>). */
export function mysqlParam(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  return String(value);
}
