import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Download, Page, Response } from 'playwright-core';
import { Deadline, pause } from './deadline.js';
import { browserError } from './errors.js';
import type { Slots } from './slots.js';

/** Largest file `stepwise.download` keeps (25 MiB): past it the download is cancelled and the action fails. */
export const DOWNLOAD_MAX_BYTES = 25 * 1024 * 1024;

/**
 * A browser's download directory (Playwright's `downloadsPath`) and the lock
 * that lets one download at a time run in it. Chromium names an in-progress
 * file `<guid>.crdownload` and Playwright does not say which guid is whose,
 * so the file that appears while the lock is held is the holder's; that is
 * how its size is watched before the download ends.
 */
export interface DownloadArea {
  dir: string;
  lock: Slots;
}

/** How often a running download's size is read: over loopback Chromium wrote ~250 MB/s here, so about 12 MB between reads. */
const SIZE_POLL_MS = 50;

/** Media types by extension, for a download whose response was not seen. */
const TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.txt': 'text/plain',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.xls': 'application/vnd.ms-excel',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.html': 'text/html',
};

/** A finished download: its bytes (at most the cap), the name the site suggested, its media type. */
export interface DownloadedFile {
  bytes: Buffer;
  name: string;
  contentType: string;
}

/**
 * Downloads of one session. Contexts accept downloads only so that
 * `stepwise.download` can take one: any download the step is not waiting for
 * is cancelled as soon as it starts.
 */
export class DownloadGate {
  private take: ((download: Download) => void) | null = null;

  /** Watch a page of the session (its first page and any popup). */
  watch(page: Page): void {
    page.on('download', (download) => {
      const take = this.take;
      if (take) {
        this.take = null;
        take(download);
      } else {
        void download.cancel().catch(() => undefined);
      }
    });
  }

  /**
   * Run `trigger` (a click, a navigation) and keep the download it starts,
   * failing BROWSER_DOWNLOAD_TOO_LARGE as soon as the file passes
   * `maxBytes` (it is cancelled and deleted, never read).
   */
  async capture(
    page: Page,
    area: DownloadArea,
    trigger: () => Promise<unknown>,
    deadline: Deadline,
    signal: AbortSignal,
    maxBytes: number = DOWNLOAD_MAX_BYTES,
  ): Promise<DownloadedFile> {
    let release: () => void;
    try {
      release = await area.lock.acquire(AbortSignal.any([signal, AbortSignal.timeout(deadline.remaining())]));
    } catch {
      throw browserError('BROWSER_TIMEOUT', `download: another download of this browser did not finish within ${deadline.timeoutMs} ms`);
    }
    const types = new Map<string, string>();
    const onResponse = (response: Response) => {
      const type = response.headers()['content-type'];
      if (type) types.set(response.url(), type.split(';')[0]!.trim());
    };
    page.on('response', onResponse);
    let download: Download | null = null;
    try {
      const before = new Set(await readdir(area.dir));
      this.take = (d) => (download = d);
      let triggerError: unknown = null;
      void trigger().catch((err: unknown) => (triggerError = err));
      while (download === null) {
        // A navigation that turns into a download ends with "Download is starting": that is the trigger working.
        if (triggerError !== null && !/Download is starting/.test(String((triggerError as Error).message ?? triggerError))) throw triggerError;
        if (deadline.expired()) throw browserError('BROWSER_TIMEOUT', `download: no download started within ${deadline.timeoutMs} ms`);
        await pause(SIZE_POLL_MS, signal);
        if (signal.aborted) throw browserError('BROWSER_ABORTED', 'download: aborted');
      }
      const started: Download = download;
      const finished = started.path().then(
        (path) => ({ path }),
        (error: unknown) => ({ error }),
      );
      for (;;) {
        const done = await Promise.race([finished, pause(SIZE_POLL_MS).then(() => null)]);
        if (done) break;
        const size = await sizeOfNew(area.dir, before);
        if (size > maxBytes) await tooLarge(started, size, maxBytes);
        if (deadline.expired() || signal.aborted) {
          await started.cancel().catch(() => undefined);
          throw browserError(signal.aborted ? 'BROWSER_ABORTED' : 'BROWSER_TIMEOUT', `download: did not finish within ${deadline.timeoutMs} ms`);
        }
      }
      const failure = await started.failure();
      if (failure !== null) throw browserError('BROWSER_ACTION_FAILED', `download failed: ${failure}`);
      const path = await started.path();
      const size = (await stat(path)).size;
      if (size > maxBytes) await tooLarge(started, size, maxBytes);
      const bytes = await readFile(path);
      await started.delete().catch(() => undefined);
      const name = started.suggestedFilename();
      return { bytes, name, contentType: types.get(started.url()) ?? TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream' };
    } catch (err) {
      const started = download as Download | null;
      if (started) {
        await started.cancel().catch(() => undefined);
        await started.delete().catch(() => undefined);
      }
      throw err;
    } finally {
      this.take = null;
      page.off('response', onResponse);
      release();
    }
  }
}

/** Bytes written so far by the files that appeared since `before` (in-progress `.crdownload` or finished). */
async function sizeOfNew(dir: string, before: Set<string>): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    if (before.has(name)) continue;
    total += await stat(join(dir, name)).then(
      (s) => s.size,
      () => 0, // renamed from .crdownload between the listing and the stat
    );
  }
  return total;
}

async function tooLarge(download: Download, size: number, maxBytes: number): Promise<never> {
  await download.cancel().catch(() => undefined);
  await download.delete().catch(() => undefined);
  throw browserError(
    'BROWSER_DOWNLOAD_TOO_LARGE',
    `download ${JSON.stringify(download.suggestedFilename())} is larger than the ${maxBytes} byte cap (stopped at ${size} bytes)`,
    { maxBytes, bytesSeen: size },
  );
}
