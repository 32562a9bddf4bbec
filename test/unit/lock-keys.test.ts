import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findLockKeyCollisions, LOCK_KEYS } from '../../src/db/lock-keys.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : /\.(ts|sql)$/.test(name) ? [path] : [];
  });
}

describe('advisory lock keys', () => {
  it('no two names share a key', () => {
    expect(findLockKeyCollisions()).toEqual([]);
  });

  it('a shared key is found', () => {
    expect(findLockKeyCollisions({ scheduler: 1, partitions: 1, other: 2 })).toEqual([['scheduler', 'partitions']]);
  });

  it('no key is written out anywhere but the registry', () => {
    // A number literal beside an advisory-lock call, or any of the registry's numbers, outside lock-keys.ts.
    const known = Object.values(LOCK_KEYS).map((k) => String(k));
    const offenders: string[] = [];
    for (const file of filesUnder(SRC)) {
      const rel = relative(SRC, file);
      if (rel === join('db', 'lock-keys.ts')) continue;
      const text = readFileSync(file, 'utf8');
      const literalCall = /pg_(try_)?advisory_(xact_)?(un)?lock(_shared)?\(\s*\d/.test(text);
      const registryNumber = /\b727_?0\d\d\b/.exec(text) ?? known.find((k) => text.includes(k));
      if (literalCall || registryNumber) offenders.push(rel);
    }
    expect(offenders, 'take advisory-lock keys from LOCK_KEYS in src/db/lock-keys.ts').toEqual([]);
  });
});
