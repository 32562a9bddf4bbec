import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createBlobStore } from '../blob/index.js';
import type { Config } from '../config/index.js';
import { PgliteDb } from '../db/index.js';
import { DataDirLockedError, UnavailableError, ValidationError } from '../errors/index.js';
import {
  backupEmbedded,
  controlSocketPath,
  MAX_SOCKET_PATH_BYTES,
  NoControlSocketError,
  requestBackup,
  restoreBackup,
  type BackupReport,
} from '../lifecycle/backup/index.js';
import { VERSION } from './runtime.js';

const SERVER_BACKUP_HINT =
  'stepwise backup copies the embedded data directory; with DATABASE_URL set, back up the PostgreSQL server with pg_dump -Fc ' +
  '(and the blob store) as docs/operations.md, section "Backups", describes';

/**
 * The data directory's own backup, when no service owns it: this process
 * opens it (taking its lock) and writes the file. Ctrl-C aborts cleanly (no
 * partial file kept).
 */
async function backupDirectly(config: Config, out: string, socketPath: string): Promise<BackupReport> {
  let db: PgliteDb;
  try {
    db = await PgliteDb.open({ dataDir: config.dataDir });
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      const why =
        Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES
          ? `its control socket path would be longer than ${MAX_SOCKET_PATH_BYTES} bytes`
          : `it offers no control socket at ${socketPath}`;
      throw new UnavailableError(
        `process ${String(err.details.ownerPid)} owns ${config.dataDir} but ${why}; stop it and run stepwise backup again (it then opens the directory itself)`,
        { dataDir: config.dataDir },
      );
    }
    throw err;
  }
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const blobs = await createBlobStore(config.blob);
  try {
    return await backupEmbedded({ db, dataDir: config.dataDir, blobConfig: config.blob, blobs, stepwiseVersion: VERSION }, out, abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await blobs.close();
    await db.close();
  }
}

/**
 * `stepwise backup --out FILE`: through the running service's control
 * socket when `stepwise serve` owns the data directory (it takes an online
 * backup and keeps serving), else by opening the directory here.
 */
async function backup(config: Config, out: string): Promise<void> {
  if (config.databaseUrl) throw new ValidationError(SERVER_BACKUP_HINT, { path: 'DATABASE_URL' });
  if (!existsSync(join(config.dataDir, 'PG_VERSION'))) {
    throw new ValidationError(`${config.dataDir} holds no embedded database (no PG_VERSION); name it with --data-dir`, { path: '--data-dir' });
  }
  const socketPath = controlSocketPath(config.dataDir);
  let report: BackupReport;
  let via: 'service' | 'direct';
  try {
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) throw new NoControlSocketError('socket path too long');
    report = await requestBackup(socketPath, out);
    via = 'service';
  } catch (err) {
    if (!(err instanceof NoControlSocketError)) throw err;
    report = await backupDirectly(config, out, socketPath);
    via = 'direct';
  }
  // The running service kept serving; it waited only while the backup's two statements held its database.
  const servicePausedMs = via === 'service' ? report.pause.totalMs : null;
  process.stdout.write(`${JSON.stringify({ via, servicePausedMs, ...report })}\n`);
  process.stderr.write(
    `backup written: ${report.file} (${(report.bytes / 1e6).toFixed(1)} MB; ${report.jobs} jobs, ${report.blobs.count} blobs` +
      `${report.keyFile ? ', the key file' : ', no key file'}) in ${(report.durationMs / 1000).toFixed(1)} s; ` +
      `${via === 'service' ? `the running service paused ${servicePausedMs} ms` : 'no service was running (the directory was opened here)'}\n`,
  );
}

export function backupCommands(program: Command, config: (cmd: Command) => Config): void {
  const cmd = program
    .command('backup')
    .description('embedded mode: write one file with the database, blobs and key file, while `stepwise serve` keeps running')
    .option('--out <file>', 'the backup file to write (must not exist)')
    .action(async (opts: { out?: string }, self: Command) => {
      if (!opts.out) self.error("error: required option '--out <file>' not specified");
      await backup(config(self), resolve(opts.out));
    });
  cmd
    .command('restore <file>')
    .description('restore a backup file into a new (or empty) data directory given with --data-dir')
    .action(async (file: string, _opts: unknown, self: Command) => {
      const dataDir = self.optsWithGlobals<{ dataDir?: string }>().dataDir;
      if (!dataDir) self.error("error: required option '--data-dir <dir>' not specified (the directory to restore into)");
      const report = await restoreBackup({ file, dataDir });
      process.stdout.write(`${JSON.stringify(report)}\n`);
      for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
    });
}
