import { open, type FileHandle } from 'node:fs/promises';

/**
 * fsync a directory, so that a file created or renamed into it survives a
 * power cut (a file's own fsync does not make its name durable). A no-op
 * where the filesystem refuses fsync on a directory (EINVAL/EISDIR): the
 * rename itself is still atomic there.
 */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Refused by the filesystem: nothing more to do.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
