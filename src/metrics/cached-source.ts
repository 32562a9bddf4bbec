/**
 * An async measurement read at most once per `ttlMs`, however often it is
 * asked for: concurrent callers share the one call in flight, and later ones
 * get its value until it is older than `ttlMs`. A scrape storm (several
 * Prometheus replicas, a dashboard refreshing) then costs the database one
 * statement per interval. A failed call is not cached: it counts through
 * `onError` and the next caller tries again.
 */
export class CachedSource<T> {
  private value: { at: number; value: T } | undefined;
  private inFlight: Promise<T | undefined> | undefined;

  constructor(
    private readonly measure: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly onError: (err: unknown) => void,
  ) {}

  get(): Promise<T | undefined> {
    if (this.value && this.now() - this.value.at < this.ttlMs) return Promise.resolve(this.value.value);
    this.inFlight ??= this.measure()
      .then(
        (value) => {
          this.value = { at: this.now(), value };
          return value;
        },
        (err: unknown) => {
          this.onError(err);
          return undefined;
        },
      )
      .finally(() => {
        this.inFlight = undefined;
      });
    return this.inFlight;
  }
}
