/**
 * Sentinel values of the aggregate_metrics dimensions: "all"
 * is a value, not NULL, so the primary key can be the upsert target. The SQL
 * in migration 0006 uses the same literals.
 */

/** The nil uuid: no workflow or client has it, so it can stand for "all of them". */
const ALL_UUID = '00000000-0000-0000-0000-000000000000';
export const AGGREGATE_ALL_WORKFLOWS = ALL_UUID;
export const AGGREGATE_ALL_CLIENTS = ALL_UUID;
/** Detail rows of jobs run on behalf of no client. */
export const AGGREGATE_NO_CLIENT = '00000000-0000-0000-0000-000000000001';
export const AGGREGATE_ALL_INITIATORS = 'all';

/** Periods kept in aggregate_metrics (MONTH keeps a year's range to ~110 rows per key). */
export const AGGREGATE_PERIODS = ['HOUR', 'DAY', 'MONTH'] as const;
export type AggregatePeriod = (typeof AGGREGATE_PERIODS)[number];
