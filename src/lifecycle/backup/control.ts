import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { ConflictError, isStepwiseError, UnavailableError, ValidationError } from '../../errors/index.js';
import type { Logger } from '../../util/logger.js';
import type { BackupReport } from './create.js';

/**
 * The local control channel of an embedded service: a Unix domain socket in
 * the data directory, mode 0600, so only the directory's owner — who can
 * read the key file anyway — can connect. `stepwise backup` uses it when a
 * running `stepwise serve` owns the data directory: the CLI sends one
 * request line, the service writes the backup file itself and answers with
 * one line. The connection closing before the answer (the CLI killed)
 * aborts the backup, which then leaves no file.
 *
 * Protocol, JSON lines: → {"op":"backup","out":"/abs/file"}
 *                        ← {"type":"started"} … {"type":"done","report":{…}} | {"type":"error","code":"…","message":"…"}
 */

export const CONTROL_SOCKET_NAME = 'stepwise.sock';

/** sun_path is 108 bytes on Linux, NUL included; a longer path cannot be bound or reached. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A request line longer than this is not ours. */
const MAX_REQUEST_BYTES = 64 * 1024;

export function controlSocketPath(dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET_NAME);
}

export type BackupHandler = (out: string, signal: AbortSignal) => Promise<BackupReport>;

type Reply = { type: 'started' } | { type: 'done'; report: BackupReport } | { type: 'error'; code: string; message: string };

function send(socket: Socket, reply: Reply): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
}

export class BackupControlServer {
  private running: { abort: AbortController; done: Promise<unknown> } | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly backup: BackupHandler,
    private readonly logger: Logger,
  ) {}

  /**
   * Listen on `<dataDir>/stepwise.sock`. The caller owns the data directory
   * (its lock), so a socket file left by a killed process is removed first.
   * Returns null, saying why in the log, when the path is too long for a socket.
   */
  static async start(dataDir: string, backup: BackupHandler, logger: Logger): Promise<BackupControlServer | null> {
    const path = controlSocketPath(dataDir);
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      logger.warn({ path, limit: MAX_SOCKET_PATH_BYTES }, 'no backup control socket: the data directory path is too long for a Unix socket; `stepwise backup` needs the service stopped');
      return null;
    }
    await unlink(path).catch(() => undefined);
    let control: BackupControlServer | undefined;
    const server = createServer((socket) => control?.accept(socket));
    // The socket file is created 0600 (no window in which another user could connect), then set exactly.
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    await chmod(path, 0o600);
    control = new BackupControlServer(server, path, backup, logger);
    return control;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const nl = buffered.indexOf('\n');
      if (nl < 0) {
        if (buffered.length > MAX_REQUEST_BYTES) {
          send(socket, { type: 'error', code: 'VALIDATION', message: `request line longer than ${MAX_REQUEST_BYTES} bytes` });
          socket.end();
        }
        return;
      }
      socket.off('data', onData);
      this.handle(socket, buffered.slice(0, nl)).catch((err: unknown) => this.logger.error({ err }, 'backup control request failed'));
    };
    socket.on('data', onData);
    socket.on('error', () => undefined); // a client that vanished: its close aborts what it asked for
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    let request: { op?: unknown; out?: unknown };
    try {
      request = JSON.parse(line) as { op?: unknown; out?: unknown };
    } catch {
      send(socket, { type: 'error', code: 'VALIDATION', message: 'the request is not JSON' });
      socket.end();
      return;
    }
    if (request.op !== 'backup' || typeof request.out !== 'string' || !isAbsolute(request.out)) {
      send(socket, { type: 'error', code: 'VALIDATION', message: 'expected {"op":"backup","out":"<absolute path>"}' });
      socket.end();
      return;
    }
    if (this.running) {
      send(socket, { type: 'error', code: 'CONFLICT', message: 'a backup is already running in this service; try again when it has finished' });
      socket.end();
      return;
    }
    if (socket.destroyed) return; // the client is already gone: nothing to write for
    const abort = new AbortController();
    const onClose = (): void => abort.abort(new Error('the client closed the connection before the backup finished'));
    socket.once('close', onClose);
    const done = this.backup(request.out, abort.signal);
    this.running = { abort, done };
    send(socket, { type: 'started' });
    try {
      const report = await done;
      this.logger.info({ report }, 'backup written');
      send(socket, { type: 'done', report });
    } catch (err) {
      if (abort.signal.aborted) this.logger.warn({ out: request.out, reason: String(abort.signal.reason) }, 'backup abandoned; no file was kept');
      else if (isStepwiseError(err) && (err.code === 'VALIDATION' || err.code === 'CONFLICT')) this.logger.warn({ out: request.out, reason: err.message }, 'backup refused');
      else this.logger.error({ err, out: request.out }, 'backup failed; no file was kept');
      send(socket, {
        type: 'error',
        code: isStepwiseError(err) ? err.code : 'UNAVAILABLE',
        message: err instanceof Error ? err.message : String(err),
      });
    } finally {
      this.running = null;
      socket.off('close', onClose);
      socket.end();
    }
  }

  /** Whether a backup is running now. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves once no backup is running (an aborted one has cleaned up). */
  async idle(): Promise<void> {
    while (this.running) await this.running.done.catch(() => undefined);
  }

  /** Stop listening, abort a backup in progress and wait for its clean-up, drop idle connections, remove the socket file. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.running?.abort.abort(new Error('the service is stopping'));
    await this.idle();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await unlink(this.path).catch(() => undefined);
  }
}

/** No service listens on the data directory's control socket (none runs, or one too old or whose path is too long). */
export class NoControlSocketError extends UnavailableError {}

/**
 * Ask the service that owns the data directory for a backup into `out`
 * (absolute), and wait for its report. Throws NoControlSocketError when
 * nothing listens, or the service's error as a typed error.
 */
export function requestBackup(socketPath: string, out: string): Promise<BackupReport> {
  return new Promise<BackupReport>((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      fn();
    };
    socket.on('connect', () => socket.write(`${JSON.stringify({ op: 'backup', out })}\n`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish(() =>
        reject(
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK'
            ? new NoControlSocketError(`nothing listens on ${socketPath}`, { path: socketPath }, { cause: err })
            : err,
        ),
      );
    });
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const reply = JSON.parse(buffered.slice(0, nl)) as Reply;
        buffered = buffered.slice(nl + 1);
        if (reply.type === 'done') finish(() => resolve(reply.report));
        else if (reply.type === 'error') {
          const error =
            reply.code === 'VALIDATION'
              ? new ValidationError(reply.message)
              : reply.code === 'CONFLICT'
                ? new ConflictError(reply.message)
                : new UnavailableError(`the service could not write the backup: ${reply.message}`);
          finish(() => reject(error));
        }
      }
    });
    socket.on('close', () => finish(() => reject(new UnavailableError('the service closed the connection before the backup finished (did it stop?); no file was kept'))));
  });
}
