import { describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/db/index.js';
import { CHANGES_CHANNEL, changePayloads, notifyChanges, parseChangePayload } from '../../src/store/change-notify.js';
import { uuidv7 } from '../../src/util/ids.js';

describe('change notifications', () => {
  const org = uuidv7();

  it('packs job ids into as few payloads as fit under the NOTIFY limit, and reads them back', () => {
    const ids = Array.from({ length: 1_000 }, () => uuidv7());
    const payloads = changePayloads(org, ids);
    expect(payloads.length).toBe(Math.ceil(1_000 / Math.floor((7_900 - 37 + 1) / 33)));
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8_000);
    const back = payloads.map((p) => parseChangePayload(p)!);
    expect(back.every((c) => c.organizationId === org)).toBe(true);
    expect(back.flatMap((c) => c.jobIds)).toEqual(ids);
  });

  it('sends nothing for no jobs, one payload for one', () => {
    expect(changePayloads(org, [])).toEqual([]);
    const id = uuidv7();
    expect(changePayloads(org, [id])).toEqual([`${org}|${id.replace(/-/g, '')}`]);
  });

  it('ignores payloads that are not its own', () => {
    for (const bad of ['', 'keys', `${org}|`, `${org}|xyz`, `not-a-uuid|${'a'.repeat(32)}`, `${org}|${'a'.repeat(31)}`]) {
      expect(parseChangePayload(bad)).toBeNull();
    }
  });

  it('skips the change payloads when the backend knows nobody listens, and keeps the other notifications', async () => {
    const sent: unknown[][] = [];
    const tx = (listening: boolean | undefined): Queryable => ({
      query: async (_text: string, params?: readonly unknown[]) => {
        sent.push([...(params ?? [])]);
        return { rows: [], rowCount: 0 } as never;
      },
      exec: async () => undefined,
      ...(listening === undefined ? {} : { listening: (channel: string) => channel !== CHANGES_CHANNEL || listening }),
    });
    const changed: [string, string[]][] = [[org, [uuidv7()]]];
    await notifyChanges(tx(false), changed);
    expect(sent).toEqual([]);
    await notifyChanges(tx(false), changed, [{ channel: 'stepwise_jobs', payload: '' }]);
    expect(sent).toEqual([['{"stepwise_jobs"}', '{""}']]);
    sent.length = 0;
    await notifyChanges(tx(true), changed);
    await notifyChanges(tx(undefined), changed);
    expect(sent.map((p) => String(p[0]))).toEqual([`{"${CHANGES_CHANNEL}"}`, `{"${CHANGES_CHANNEL}"}`]);
  });
});
