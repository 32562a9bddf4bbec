/**
 * Sentinel values of the aggregate_metrics dimensions (seed 001 §2.4): "all"
 * is a value, not NULL, so the primary key can be the upsert target. The SQL
 * in migration 0006 uses the same literals.
 */
export const AGGREGATE_ALL_WORKFLOWS = '00000000-0000-0000-0000-000000000000';
export const AGGREGATE_ALL_CLIENTS = '00000000-0000-0000-0000-000000000000';
/** Detail rows of jobs run on behalf of no client. */
export const AGGREGATE_NO_CLIENT = '00000000-0000-0000-0000-000000000001';
export const AGGREGATE_ALL_INITIATORS = 'all';

/** Periods kept in aggregate_metrics (MONTH keeps a year's range to ~110 rows per key). */
export const AGGREGATE_PERIODS = ['HOUR', 'DAY', 'MONTH'] as const;
export type AggregatePeriod = (typeof AGGREGATE_PERIODS)[number];
