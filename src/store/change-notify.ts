import { pgArray, type Queryable } from '../db/index.js';

/**
 * Channel NOTIFY'd when jobs change in a way a live view shows: created,
 * status changed, or new stream rows (the API's server-sent events,
 * api/live/). The payload names one organization and its jobs:
 * `<organization uuid>|<job id as 32 hex>,<job id>…`.
 */
export const CHANGES_CHANNEL = 'stepwise_changes';

/** NOTIFY payloads must stay under 8,000 bytes; keep a margin. */
const MAX_PAYLOAD = 7_900;
/** A job id without its dashes, and the comma before it. */
const ID_CHARS = 33;

/**
 * The payloads announcing `jobIds` of one organization, as few as fit:
 * ~238 jobs per payload (a flush of 500 jobs of one organization is 3).
 */
export function changePayloads(organizationId: string, jobIds: Iterable<string>): string[] {
  const head = `${organizationId}|`;
  const perPayload = Math.floor((MAX_PAYLOAD - head.length + 1) / ID_CHARS);
  const out: string[] = [];
  let current = '';
  let count = 0;
  for (const id of jobIds) {
    const hex = id.replace(/-/g, '');
    current += count === 0 ? hex : `,${hex}`;
    if (++count === perPayload) {
      out.push(head + current);
      current = '';
      count = 0;
    }
  }
  if (count > 0) out.push(head + current);
  return out;
}

const HEX32 = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A payload of CHANGES_CHANNEL read back; null for one that is not ours (sent by hand, truncated). */
export function parseChangePayload(payload: string): { organizationId: string; jobIds: string[] } | null {
  const bar = payload.indexOf('|');
  if (bar < 0) return null;
  const organizationId = payload.slice(0, bar);
  if (!UUID.test(organizationId)) return null;
  const jobIds: string[] = [];
  for (const hex of payload.slice(bar + 1).split(',')) {
    if (!HEX32.test(hex)) return null;
    jobIds.push(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
  }
  return jobIds.length > 0 ? { organizationId, jobIds } : null;
}

/** One NOTIFY to send besides the change payloads (the workers' wake-up on enqueue). */
export interface ExtraNotify {
  channel: string;
  payload: string;
}

/**
 * Announce changed jobs, grouped by organization, in ONE statement
 * (pg_notify over a set), together with `extra` notifications when given,
 * so a flush or an enqueue pays one round trip for all its NOTIFYs. Inside
 * a transaction, as every caller is: delivered at commit, never for work
 * rolled back.
 */
export async function notifyChanges(
  tx: Queryable,
  byOrganization: Iterable<readonly [string, Iterable<string>]>,
  extra: readonly ExtraNotify[] = [],
): Promise<void> {
  const channels: string[] = extra.map((e) => e.channel);
  const payloads: string[] = extra.map((e) => e.payload);
  // On PGlite with no live view open, nobody would receive the change payloads: a flush then sends
  // no statement at all. (Every statement on PGlite waits its turn on the one connection; with the
  // NOTIFY in every flush, three alternating pairs of the throughput bench ran 1–19 % slower.)
  const announce = tx.listening?.(CHANGES_CHANNEL) !== false;
  for (const [organizationId, jobIds] of announce ? byOrganization : []) {
    for (const p of changePayloads(organizationId, jobIds)) {
      channels.push(CHANGES_CHANNEL);
      payloads.push(p);
    }
  }
  if (payloads.length === 0) return;
  await tx.query(`SELECT pg_notify(n.channel, n.payload) FROM unnest($1::text[], $2::text[]) AS n(channel, payload)`, [
    pgArray(channels),
    pgArray(payloads),
  ]);
}
