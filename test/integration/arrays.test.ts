import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgArray, pgJsonArray } from '../../src/db/index.js';
import { createTestDb, type TestDb } from '../helpers/db.js';

/** Hot-path array literals must read back exactly as the values went in, on both backends. */
describe('pgArray literals', () => {
  let t: TestDb;
  beforeAll(async () => {
    t = await createTestDb();
  });
  afterAll(() => t?.close());

  it('round-trips awkward strings and nulls through text[]', async () => {
    const values = ['plain', '', 'NULL', 'null', 'a,b', '{x}', ' lead and trail ', 'say "hi"', 'back\\slash', '\\"', 'tab\tnew\nline', 'ünïcødé ✓ 😀', null];
    const { rows } = await t.db.query<{ v: (string | null)[] }>('SELECT $1::text[] AS v', [pgArray(values)]);
    expect(rows[0]!.v).toEqual(values);
  });

  it('round-trips numbers, booleans, uuids and timestamps', async () => {
    const { rows } = await t.db.query<{ i: number[]; f: number[]; b: boolean[]; u: string[]; ts: Date[] }>(
      'SELECT $1::int[] AS i, $2::float8[] AS f, $3::boolean[] AS b, $4::uuid[] AS u, $5::timestamptz[] AS ts',
      [
        pgArray([0, -7, 2147483647, null]),
        pgArray([1.5, -0.000123, 1e21, 1735689600123.456]),
        pgArray([true, false, null]),
        pgArray(['01a20ab9-ed64-7000-bba1-deb5ec20b599']),
        pgArray(['2026-11-23T23:59:59.123Z']),
      ],
    );
    expect(rows[0]!.i).toEqual([0, -7, 2147483647, null]);
    expect(rows[0]!.f).toEqual([1.5, -0.000123, 1e21, 1735689600123.456]);
    expect(rows[0]!.b).toEqual([true, false, null]);
    expect(rows[0]!.u).toEqual(['01a20ab9-ed64-7000-bba1-deb5ec20b599']);
    expect(rows[0]!.ts.map((d) => new Date(d).toISOString())).toEqual(['2026-11-23T23:59:59.123Z']);
  });

  it('round-trips JSON documents with quotes and backslashes through jsonb[]', async () => {
    const docs = [{ a: 'say "hi"', b: 'c:\\dir', n: [1, 2, { x: null }] }, null, 'just a string', 42];
    const { rows } = await t.db.query<{ d: unknown[] }>('SELECT $1::jsonb[] AS d', [pgJsonArray(docs)]);
    expect(rows[0]!.d).toEqual(docs);
  });

  it('refuses a number the database would misread', () => {
    expect(() => pgArray([1, Number.NaN])).toThrow(/element 1/);
    expect(() => pgArray([Number.POSITIVE_INFINITY])).toThrow(TypeError);
  });
});
