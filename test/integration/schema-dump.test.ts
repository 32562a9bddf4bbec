import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { dumpMigratedSchema, SCHEMA_FILE } from '../../scripts/lib/schema-dump.js';
import { backend } from '../helpers/db.js';

// pg_dump talks to a server; PGlite has none (and its schema is the same migrations' anyway).
describe.skipIf(backend !== 'postgres')('src/db/schema.sql (needs the PostgreSQL server and pg_dump: skipped on PGlite)', () => {
  it('is what the migrations produce on a fresh database', async () => {
    const fresh = await dumpMigratedSchema(inject('pgAdminUrl'), 'test');
    const committed = await readFile(SCHEMA_FILE, 'utf8').catch(() => '');
    expect(committed, 'src/db/schema.sql is out of date: run npm run schema:dump').toBe(fresh);
  });
});
