import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DataDirLockedError } from '../errors/index.js';

const LOCK_NAME = 'stepwise.lock';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else — still alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Take the exclusive lock on an embedded data directory. PGlite has no
 * multi-process safety: two processes on one directory silently lost one
 * side's writes here, so a second opener must fail loudly. The lock file is
 * created with O_EXCL and holds the owner's PID; a lock whose owner is gone
 * (kill -9) is stale and is taken over. Returns the release function.
 */
export function acquireDataDirLock(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_NAME);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.removeListener('exit', release);
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return release;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = Number.NaN;
      try {
        owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      } catch {
        continue; // removed between our open and read: try again
      }
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new DataDirLockedError(dataDir, owner);
      }
      try {
        unlinkSync(path); // stale: its owner died without releasing
      } catch {
        // another process took it over first; the next attempt will see that
      }
    }
  }
  throw new DataDirLockedError(dataDir, Number.NaN);
}
