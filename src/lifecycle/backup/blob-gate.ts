import type { BlobStore } from '../../blob/index.js';

/**
 * Blob deletion and a backup exclude each other inside the serving process.
 * A backup's database copy may refer to any blob that exists when it ends,
 * so from just before pg_backup_stop until the blobs are copied no blob may
 * be deleted: the backup holds the gate, deletions wait at it. Deleting is
 * maintenance's business (screenshots past retention, archives nothing
 * refers to, results of deleted jobs), which can wait; writes never wait,
 * and a blob written during the copy is harmless extra.
 */
export class BlobDeletionGate {
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private held: Promise<void> | null = null;
  private waitingHolders = 0;

  /** Backups waiting for deletions in flight to finish before they hold the gate. */
  get holdersWaiting(): number {
    return this.waitingHolders;
  }

  /** Whether a backup holds the gate now (deletions wait). */
  get isHeld(): boolean {
    return this.held !== null;
  }

  /** Run one deletion, after any backup holding the gate has let go. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    while (this.held) await this.held;
    this.inFlight++;
    try {
      return await fn();
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained.splice(0).forEach((resolve) => resolve());
    }
  }

  /**
   * Stop new deletions, wait for those in flight, and return the release.
   * One holder at a time; `signal` gives up the wait (the gate is then
   * released at once).
   */
  async hold(signal?: AbortSignal): Promise<() => void> {
    while (this.held) await this.held;
    signal?.throwIfAborted();
    let open!: () => void;
    this.held = new Promise<void>((resolve) => (open = resolve));
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.held = null;
      open();
    };
    if (this.inFlight > 0) {
      this.waitingHolders++;
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(signal!.reason);
          signal?.addEventListener('abort', onAbort, { once: true });
          this.drained.push(() => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          });
        });
      } catch (err) {
        release();
        throw err;
      } finally {
        this.waitingHolders--;
      }
    }
    return release;
  }

  /** `store` with its deletions going through this gate; every other call passes straight through. */
  guard(store: BlobStore): BlobStore {
    return {
      kind: store.kind,
      put: (key, body, options) => store.put(key, body, options),
      get: (key) => store.get(key),
      getStream: (key) => store.getStream(key),
      delete: (key) => this.run(() => store.delete(key)),
      exists: (key) => store.exists(key),
      list: (prefix) => store.list(prefix),
      signedReadUrl: (key, expiresInSeconds) => store.signedReadUrl(key, expiresInSeconds),
      close: () => store.close(),
    };
  }
}
