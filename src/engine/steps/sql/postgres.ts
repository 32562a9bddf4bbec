import pg from 'pg';
import { connectionFailure, statementFailure } from './errors.js';
import { bounded, CONNECT_TIMEOUT_MS, type SqlRequest } from './request.js';
import { cancelBackend } from './pg-cancel.js';
import { pgCheckedStream } from './checked-socket.js';
import { RowCollector, type SqlOutput } from './rows.js';

/**
 * The sql step on PostgreSQL: a pg Client of its own per attempt, `BEGIN
 * TRANSACTION READ ONLY` with `SET LOCAL statement_timeout`, then the
 * statement through the extended protocol (Parse refuses more than one
 * statement; parameters travel in Bind, never in the text), read a page at a
 * time from its portal and stopped once the collector is full, so a huge
 * result is never loaded. The connection is closed at the end, whatever
 * happened; a statement stopped mid-way (abort, client-side timeout) is
 * cancelled on the server too.
 */
export async function runPostgres(request: SqlRequest): Promise<SqlOutput> {
  const { target, signal } = request;
  const client = new pg.Client({
    connectionString: target.connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'stepwise-sql-step',
    stream: pgCheckedStream(request.checked),
  });
  // Socket errors reach the query in flight through handleError; without a listener an idle client's error would crash the process.
  client.on('error', () => undefined);
  const destroy = () => client.connection.stream.destroy();
  let healthy = false;
  try {
    try {
      await bounded(client.connect(), signal, null, destroy);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw connectionFailure(err, target);
    }
    const read = new PortalRead(request.query, request.params.map(pgParam), new RowCollector(request.maxRows, request.maxBytes), pageSize(request.maxRows));
    const work = (async () => {
      // Our own text, one simple-protocol round trip; the timeout is a number we computed.
      await client.query(`BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.round(request.timeoutMs))}`);
      client.query(read);
      return read.done;
    })();
    try {
      const output = await bounded(work, signal, request.timeoutMs, () => {
        cancelBackend(client, request.checked);
        destroy();
      });
      healthy = true;
      return output;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw statementFailure(err, target, request.timeoutMs);
    }
  } finally {
    // Terminate rolls the read-only transaction back; a connection in an unknown state is cut instead.
    if (healthy) await client.end().catch(() => undefined);
    else destroy();
  }
}

/** Rows per Execute: small pages bound what arrives past a cut (a page of wide rows) at one more round trip per page. */
function pageSize(maxRows: number): number {
  return Math.min(maxRows + 1, 200);
}

/** The part of pg's Connection a portal read uses (the wire messages of the extended protocol). */
interface Wire {
  parse(msg: { text: string; name?: string; types?: number[] }): void;
  bind(msg: { portal?: string; statement?: string; values?: (string | null)[] }): void;
  describe(msg: { type: 'S' | 'P'; name?: string }): void;
  execute(msg: { portal?: string; rows?: number }): void;
  flush(): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

type Parser = (text: string) => unknown;

/**
 * A pg Submittable (the hook node-postgres offers for reading a query its own
 * way): Parse/Bind/Describe, then Execute `page` rows at a time; after each
 * page (PortalSuspended) it asks for the next only while the collector takes
 * more rows, otherwise it Syncs and the result ends there.
 */
class PortalRead implements pg.Submittable {
  readonly done: Promise<SqlOutput>;
  private settle!: { resolve: (o: SqlOutput) => void; reject: (e: unknown) => void };
  private parsers: Parser[] = [];
  /** A value the parser refused: reported once the server is back at ReadyForQuery. */
  private failure: Error | undefined;

  constructor(
    private readonly text: string,
    private readonly values: (string | null)[],
    private readonly rows: RowCollector,
    private readonly page: number,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
  }

  submit(connection: pg.Connection): void {
    const wire = connection as unknown as Wire;
    wire.parse({ text: this.text, types: [] });
    wire.bind({ values: this.values });
    wire.describe({ type: 'P' });
    wire.execute({ rows: this.page });
    wire.flush();
  }

  handleRowDescription(msg: { fields: { name: string; dataTypeID: number }[] }): void {
    this.rows.setFields(msg.fields.map((f) => f.name));
    this.parsers = msg.fields.map((f) => parserFor(f.dataTypeID));
  }

  private get stopped(): boolean {
    return this.rows.full || this.failure !== undefined;
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.stopped) return; // the rest of a page after the cut
    try {
      this.rows.add(msg.fields.map((raw, i) => (raw === null ? null : this.parsers[i]!(raw))));
    } catch (err) {
      // Thrown here it would surface in pg's socket handler, outside any promise.
      this.failure = new Error(`a value could not be read: ${(err as Error).message}`);
    }
  }

  handlePortalSuspended(connection: pg.Connection): void {
    const wire = connection as unknown as Wire;
    if (this.stopped) {
      wire.sync();
      return;
    }
    wire.execute({ rows: this.page });
    wire.flush();
  }

  handleCommandComplete(_msg: unknown, connection: pg.Connection): void {
    (connection as unknown as Wire).sync();
  }

  handleEmptyQuery(connection: pg.Connection): void {
    (connection as unknown as Wire).sync();
  }

  handleError(err: unknown, connection: pg.Connection): void {
    // After an ErrorResponse the server skips to the next Sync; send it so the connection is usable. A socket error has no server to answer.
    if (err instanceof pg.DatabaseError) (connection as unknown as Wire).sync();
    this.settle.reject(err);
  }

  handleReadyForQuery(): void {
    if (this.failure) this.settle.reject(this.failure);
    else this.settle.resolve(this.rows.output());
  }

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as Wire).sendCopyFail('COPY FROM STDIN is not available to an sql step');
  }

  handleCopyData(): void {
    // COPY TO STDOUT: data is not rows; ignored.
  }
}

/** node-postgres's parser of a type's text form (typed there for its builtin scalar oids only). */
const typeParser = pg.types.getTypeParser as (oid: number, format: 'text') => Parser;
const textArray = typeParser(1009, 'text'); // text[]
const raw: Parser = (text) => text;
/**
 * Types whose node-postgres parsing would change the value: date and
 * timestamp without time zone become a JS Date in the worker's local zone
 * (the text is the value, kept as is), interval an object. timestamptz
 * stays a Date (an instant; the output says it in ISO), int8 and numeric
 * are already strings.
 */
const OVERRIDES: Record<number, Parser> = {
  1082: raw, // date
  1114: raw, // timestamp
  1186: raw, // interval
  1182: textArray, // date[]
  1115: textArray, // timestamp[]
  1187: textArray, // interval[]
};

function parserFor(oid: number): Parser {
  return OVERRIDES[oid] ?? typeParser(oid, 'text');
}

/**
 * A JSON parameter as the text PostgreSQL parses for it: an array becomes
 * an array literal (so `= ANY($1::int[])` works), an object JSON text.
 */
export function pgParam(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return pgArray(value);
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function pgArray(items: readonly unknown[]): string {
  const parts = items.map((item) => {
    if (item === null || item === undefined) return 'NULL';
    if (Array.isArray(item)) return pgArray(item);
    const text = typeof item === 'object' ? JSON.stringify(item) : String(item);
    return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  });
  return `{${parts.join(',')}}`;
}
