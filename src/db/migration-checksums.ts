import { createHash } from 'node:crypto';
import { normaliseSql } from './sql-text.js';

/**
 * Checksum of a migration as recorded in schema_migrations: sha256 (hex) of
 * its SQL with comments removed and white space normalised, so rewording a
 * comment or re-indenting an applied migration is not a change, while any
 * change to a statement still is.
 */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(normaliseSql(sql)).digest('hex');
}

/** The two checksums of one migration file as it was when databases recorded the old scheme. */
export interface LegacyChecksum {
  /** sha256 of the whole file text, comments and white space included: what old databases recorded. */
  readonly fullText: string;
  /** migrationChecksum of that same text: the current file must still have it to be accepted. */
  readonly normalised: string;
}

/**
 * Migrations 0001–0014 were recorded with the sha256 of their full text.
 * Their comments have been reworded since, which changes the full text but
 * not the statements. A database whose record holds `fullText` is
 * accepted, and its record rewritten to the current scheme, only when the
 * current file's migrationChecksum equals `normalised`: a changed statement
 * is refused as before. Frozen: later migrations were only ever recorded
 * with migrationChecksum, and these values must never change.
 */
export const LEGACY_CHECKSUMS: Readonly<Record<number, LegacyChecksum>> = Object.freeze({
  1: { fullText: 'a66cb57154ad5f866c72d98e2f8d1bc1f71977499fce5b08f80cdf63dc3025b8', normalised: '5e88925114c2a5b79f718f5ea426c0e384c5b949dfe82403782836c1bdcdbe47' },
  2: { fullText: '71cd58e4a5fcb880e0251cc4f2fed1e506538c81fb2be1b5f2ccc3c5aa4b080e', normalised: 'd9bc68a3176c9b4c9ece85476f40be66e7baea83870e0286b2e256780566d2e8' },
  3: { fullText: '6ea3609f2c3e197e3f0075bb7264416fc2e07e12da1348628cb2570549cef19a', normalised: '5b0c1b0e03a2364603fca877fbcacd09fae5615d2bc243ef9a6f4ebaf853156a' },
  4: { fullText: 'ba51cd157ffaa9b530eab5d2d3a4c8b2ed0d2596a2b7fe809bc58d75f48cad26', normalised: 'b629218a9fd7b0915d5f1325c8b4045ddb4ae1fcfee587467f35c04de3e33d7e' },
  5: { fullText: 'd45f6e102d500226f3c62f51d9a5182fd7caf5f06f43c622a254bd93b86bead1', normalised: '0d91644a7b5b7b9273b1e104b22c86da0fd4c94a6cd19b02a0cfaaaf9b77b932' },
  6: { fullText: '63666c22caf5b3aee28e18257615b77e7df888e643840ebcbe6bc5717ed7b9ad', normalised: 'a57cd9e201601d0908e5de89fccfb20639248b1d5f54a91058b4d8083d5ba6fb' },
  7: { fullText: 'ef9d7190ac92142ed19a09894c4b6cf24daba4aa1c1268b90144ddf6f82586a0', normalised: '0a0e4c4393fc563b319d81f24c176ddd69af35067107ae4d8585278998b07801' },
  8: { fullText: '90893aeb5a6d3438774ed8dec8149651cd1d3f76379c7f3f18fa46b9c9538c06', normalised: '7dbdd569175153204686f47ea5b774a9c07d16568b869133a9991666bf9e3186' },
  9: { fullText: '2c9685ef31bbc40abd322928400a09ec9c4ca445ac168584bb111e77e28124bd', normalised: '3d3fd2c3687675baaa77862ce4ff09709cb97b41651ea279579f3ea88f38e07e' },
  10: { fullText: 'f59dc393a313268efd76f4f635e4ea9888785ab6970a0ae7613a96b0f93600f3', normalised: 'ccf55301ed85bae027f6480f45883f51f64cf0e97b06d96257aa0194ab6b4565' },
  11: { fullText: '7c6080702ffab4e9fac2d97fd1255c727fcd8fd32aee4caed7914feda3bfa627', normalised: '16dd3c896428c4fbcc1e66116388b5482843b847b7c7bbd1a15a0a40248dc2b7' },
  12: { fullText: 'c45d811935b2ff68f825b29b610074aa3d213c207af85c9aa5b16dc15aba7bea', normalised: '773512863f814e56dcbfe4466fdc68e7cda737561511fea9e841becd0c08699c' },
  13: { fullText: 'b5cd5eaf02257e61922104de423ae123bb11225d9b454129ecb20d5fac1fc1fc', normalised: '6b851fac10c22fb38fbb18c28cff39a806b5b2aa0907514db6473d34d672d8da' },
  14: { fullText: '76747a731c9bddb084303e1d84bd66bc4adaee331186e1d0513808b242363d2b', normalised: '1db30d1433a0f55fa89331e6c956a448afcb154085fb9a0d77d9aa83596933c7' },
});

/** How a recorded checksum relates to the current file's. */
export type ChecksumVerdict = 'match' | 'legacy' | 'changed';

/**
 * Compare what schema_migrations recorded for `version` with the current
 * file's checksum: `match`, `legacy` (recorded under the old full-text
 * scheme for the same statements: rewrite the record), or `changed`.
 */
export function compareChecksum(version: number, recorded: string, current: string): ChecksumVerdict {
  if (recorded === current) return 'match';
  const legacy = LEGACY_CHECKSUMS[version];
  if (legacy && recorded === legacy.fullText && current === legacy.normalised) return 'legacy';
  return 'changed';
}
