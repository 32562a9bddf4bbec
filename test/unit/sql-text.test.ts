import { describe, expect, it } from 'vitest';
import { normaliseSql, scanSql, splitStatements } from '../../src/db/sql-text.js';
import { compareChecksum, LEGACY_CHECKSUMS, migrationChecksum } from '../../src/db/migration-checksums.js';
import { loadMigrations } from '../../src/db/index.js';

describe('scanSql', () => {
  it('gives back the text exactly when its segments are joined', () => {
    const sql = `SELECT 'a;b' -- c;d\n, "x""y", E'it\\'s', $f$ -- kept $f$ /* a /* nested */ b */;`;
    expect(scanSql(sql).map((s) => s.text).join('')).toBe(sql);
  });

  it('tells comments from the same characters inside literals and bodies', () => {
    const kinds = scanSql(`'-- no' "/* no */" $$ -- body $$ -- yes`).map((s) => s.kind);
    expect(kinds.filter((k) => k === 'comment')).toHaveLength(1);
    expect(kinds).toContain('string');
    expect(kinds).toContain('identifier');
    expect(kinds).toContain('dollar');
  });

  it('reads $1 and a$b as code, not as dollar quotes', () => {
    expect(scanSql('SELECT $1, a$b$c FROM t').every((s) => s.kind !== 'dollar')).toBe(true);
  });
});

describe('normaliseSql', () => {
  it('drops line and nested block comments and normalises white space', () => {
    const a = 'CREATE TABLE t (\n  a int, -- the a\n  b text /* the /* nested */ b */\n);\n';
    const b = '-- header\ncreate_marker;\nCREATE TABLE t (a int,\n\tb text);';
    expect(normaliseSql(a)).toBe('CREATE TABLE t(a int,b text);');
    expect(normaliseSql(b)).toBe('create_marker;CREATE TABLE t(a int,b text);');
  });

  it('keeps string literals and quoted identifiers exactly, comment-like text included', () => {
    expect(normaliseSql(`SELECT '--  not a comment', "a  /* b */"`)).toBe(`SELECT '--  not a comment',"a  /* b */"`);
    expect(normaliseSql(`SELECT E'it\\'s -- still a string'`)).toBe(`SELECT E'it\\'s -- still a string'`);
    expect(normaliseSql(`SELECT 'it''s -- still'`)).toBe(`SELECT 'it''s -- still'`);
  });

  it('normalises function bodies, keeping the strings inside them', () => {
    const body = `CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$\nBEGIN\n  -- why\n  RETURN '-- kept';\nEND $$;`;
    expect(normaliseSql(body)).toBe(`CREATE FUNCTION f()RETURNS text LANGUAGE plpgsql AS $$BEGIN RETURN '-- kept';END$$;`);
  });

  it('still sees a changed statement', () => {
    expect(normaliseSql('SELECT 1')).not.toBe(normaliseSql('SELECT 2'));
    expect(normaliseSql("SELECT 'a b'")).not.toBe(normaliseSql("SELECT 'a  b'"));
    expect(normaliseSql('SELECT a b')).not.toBe(normaliseSql('SELECT ab'));
  });
});

describe('splitStatements', () => {
  it('splits at semicolons outside literals, comments and bodies, dropping empty pieces', () => {
    const sql = `-- only a comment;\nCREATE INDEX CONCURRENTLY i ON t (a);\n/* ; */ SELECT ';' ;\nDO $$ BEGIN PERFORM 1; END $$;\n-- trailing`;
    expect(splitStatements(sql)).toEqual([
      '-- only a comment;\nCREATE INDEX CONCURRENTLY i ON t (a)',
      "/* ; */ SELECT ';'",
      'DO $$ BEGIN PERFORM 1; END $$',
    ]);
  });
});

describe('migration checksums', () => {
  it('ignore comments and layout but not statements', () => {
    const base = 'CREATE TABLE t (a int);';
    expect(migrationChecksum(`-- reworded\n${base}\n`)).toBe(migrationChecksum(base));
    expect(migrationChecksum('CREATE TABLE t (a bigint);')).not.toBe(migrationChecksum(base));
  });

  it('accept a legacy full-text record only for the same statements', () => {
    const legacy = LEGACY_CHECKSUMS[3]!;
    expect(compareChecksum(3, legacy.fullText, legacy.normalised)).toBe('legacy');
    expect(compareChecksum(3, legacy.fullText, migrationChecksum('SELECT 1'))).toBe('changed');
    expect(compareChecksum(4, legacy.fullText, legacy.normalised)).toBe('changed');
    expect(compareChecksum(3, legacy.normalised, legacy.normalised)).toBe('match');
  });

  it('legacy table: every listed migration file still has the statements that were recorded', async () => {
    const byVersion = new Map((await loadMigrations()).map((m) => [m.version, m]));
    const versions = Object.keys(LEGACY_CHECKSUMS).map(Number);
    expect(versions).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    for (const v of versions) {
      expect(byVersion.get(v)?.checksum, `migration ${v}'s statements changed; add a new migration instead`).toBe(LEGACY_CHECKSUMS[v]!.normalised);
    }
  });
});
