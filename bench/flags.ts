/**
 * Command-line flags of the benchmarks: `--name value` and `--name=value`,
 * checked the same way in every scenario. Bad input throws BenchUsageError,
 * which run.ts prints with the usage (exit code 2).
 */
export class BenchUsageError extends Error {}

/** Call `on` for each flag in order; `value()` takes the flag's value (after `=`, or the next argument). */
export function eachFlag(args: readonly string[], on: (flag: string, value: () => string | undefined, arg: string) => void): void {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    on(flag, () => (eq > 0 ? arg.slice(eq + 1) : args[++i]), arg);
  }
}

/** A whole number of at least `min`. */
export function intFlag(flag: string, raw: string | undefined, min: number): number {
  if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < min) {
    throw new BenchUsageError(`${flag} needs an integer >= ${min}, got ${raw === undefined ? 'nothing' : `"${raw}"`}`);
  }
  return Number(raw);
}

/** A database name: it becomes part of a connection URL, so a plain identifier only. */
export function databaseFlag(flag: string, raw: string | undefined): string {
  if (raw === undefined || !/^[a-z_][a-z0-9_]{0,62}$/.test(raw)) {
    throw new BenchUsageError(`${flag} needs a database name of lower-case letters, digits and _, got "${raw ?? ''}"`);
  }
  return raw;
}

/** `--name` with no value given, or any flag the scenario does not know. */
export function unknownFlag(arg: string): never {
  throw new BenchUsageError(`unknown option "${arg}"`);
}

/** The size flags of the scenarios that generate a dataset (bench/scale-data.ts and bench/storage-data.ts). */
export interface DatasetSize {
  months?: number | undefined;
  jobsPerMonth?: number | undefined;
  rowsPerJob?: number | undefined;
}

/**
 * `--months`, `--jobs-per-month` and `--rows-per-job` into `opts`; false for
 * any other flag. The smallest month count and rows per job are the
 * scenario's own (a storage dataset needs 2 months to drop one; a job of
 * fewer than 3 rows has no step).
 */
export function datasetFlag(opts: DatasetSize, flag: string, value: () => string | undefined, min: { months: number; rowsPerJob: number }): boolean {
  switch (flag) {
    case '--months':
      opts.months = intFlag(flag, value(), min.months);
      return true;
    case '--jobs-per-month':
      opts.jobsPerMonth = intFlag(flag, value(), 1);
      return true;
    case '--rows-per-job':
      opts.rowsPerJob = intFlag(flag, value(), min.rowsPerJob);
      return true;
    default:
      return false;
  }
}
