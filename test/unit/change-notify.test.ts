import { describe, expect, it } from 'vitest';
import { changePayloads, parseChangePayload } from '../../src/store/change-notify.js';
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
});
