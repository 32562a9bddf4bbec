import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  isFresh,
  newSecret,
  parseSignatures,
  parseTimestamp,
  sign,
  TOLERANCE_SECONDS,
  verify,
} from '../../src/security/webhook-signature.js';

const secret = 'whsec_test-secret-0123456789abcdefghijklmnopqrstuv';
const nowMs = Date.UTC(2026, 10, 23, 12, 0, 0);
const now = nowMs / 1000;
const body = Buffer.from('{"claim":"C-1","amount":12.5}');

describe('newSecret', () => {
  it('is whsec_ + 32 random bytes in base64url, different every time', () => {
    const a = newSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a.slice(6), 'base64url')).toHaveLength(32);
    expect(newSecret()).not.toBe(a);
  });
});

describe('sign', () => {
  it('is v1= and the hex HMAC-SHA256 of "<timestamp>.<body>" under the whole secret string', () => {
    const expected = createHmac('sha256', secret).update(`${now}.${body.toString()}`).digest('hex');
    expect(sign(secret, now, body)).toBe(`v1=${expected}`);
    expect(sign(secret, now, body.toString())).toBe(`v1=${expected}`);
  });
});

describe('verify', () => {
  const good = () => sign(secret, now, body);

  it('accepts a correct signature and returns the timestamp and the replay key', () => {
    const v = verify(secret, String(now), good(), body, nowMs);
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.timestamp).toBe(now);
    expect(v.digest.toString('hex')).toBe(good().slice(3));
  });

  it('refuses a tampered body, a changed timestamp and a wrong secret as MISMATCH', () => {
    expect(verify(secret, String(now), good(), Buffer.from('{"claim":"C-1","amount":99.5}'), nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
    expect(verify(secret, String(now), good(), Buffer.concat([body, Buffer.from(' ')]), nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
    expect(verify(secret, String(now + 1), good(), body, nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
    expect(verify(newSecret(), String(now), good(), body, nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
    const flipped = good().slice(0, -1) + (good().endsWith('0') ? '1' : '0');
    expect(verify(secret, String(now), flipped, body, nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
  });

  it('signs bytes, not text: a body that is not valid UTF-8 verifies only as sent', () => {
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
    const sig = sign(secret, now, bytes);
    expect(verify(secret, String(now), sig, bytes, nowMs).ok).toBe(true);
    expect(verify(secret, String(now), sig, Buffer.from(bytes.toString('utf8')), nowMs).ok).toBe(false);
  });

  it(`accepts timestamps up to ${TOLERANCE_SECONDS} s old or ahead, and refuses anything further as STALE`, () => {
    for (const ts of [now - TOLERANCE_SECONDS, now + TOLERANCE_SECONDS, now - 1, now + 1]) {
      expect(verify(secret, String(ts), sign(secret, ts, body), body, nowMs).ok, String(ts - now)).toBe(true);
    }
    for (const ts of [now - TOLERANCE_SECONDS - 1, now + TOLERANCE_SECONDS + 1, now - 86_400, 0]) {
      expect(verify(secret, String(ts), sign(secret, ts, body), body, nowMs), String(ts - now)).toEqual({ ok: false, reason: 'STALE' });
    }
  });

  it('reports STALE before MISMATCH: staleness depends on the headers and the clock, never on the secret', () => {
    const old = now - 3600;
    expect(verify(newSecret(), String(old), sign(secret, old, body), body, nowMs)).toEqual({ ok: false, reason: 'STALE' });
  });

  it.each([
    ['no timestamp', undefined, 'sig'],
    ['no signature', 'now', undefined],
    ['an empty signature', 'now', ''],
    ['a timestamp in milliseconds-with-fraction form', `${now}.5`, 'sig'],
    ['a negative timestamp', `-${now}`, 'sig'],
    ['an ISO timestamp', new Date(nowMs).toISOString(), 'sig'],
    ['a signature without a scheme', 'now', 'bare'],
    ['a truncated v1 signature', 'now', 'truncated'],
    ['non-hex characters', 'now', 'nonhex'],
    ['only unknown schemes', 'now', 'v2only'],
    ['a header far too long', 'now', 'huge'],
  ])('refuses %s as MALFORMED', (_name, ts, sig) => {
    const real = sign(secret, now, body);
    const signatures: Record<string, string> = {
      sig: real,
      bare: real.slice(3),
      truncated: real.slice(0, 40),
      nonhex: `v1=${'z'.repeat(64)}`,
      v2only: `v2=${real.slice(3)}`,
      huge: Array.from({ length: 20 }, () => real).join(','),
    };
    const timestampHeader = ts === 'now' ? String(now) : ts;
    const signatureHeader = sig === undefined ? undefined : (signatures[sig] ?? sig);
    expect(verify(secret, timestampHeader, signatureHeader, body, nowMs)).toEqual({ ok: false, reason: 'MALFORMED' });
  });

  it('accepts a list of signatures when one v1 entry matches, ignoring other schemes', () => {
    const real = sign(secret, now, body);
    const other = sign(newSecret(), now, body);
    const v = verify(secret, String(now), `v2=abcd, ${other}, ${real}`, body, nowMs);
    expect(v.ok).toBe(true);
    // The replay key is the expected HMAC, whatever else the header carried.
    if (v.ok) expect(v.digest.toString('hex')).toBe(real.slice(3));
    expect(verify(secret, String(now), `${other},${other}`, body, nowMs)).toEqual({ ok: false, reason: 'MISMATCH' });
  });
});

describe('header parsing', () => {
  it('reads whole seconds only', () => {
    expect(parseTimestamp('1700000000')).toBe(1_700_000_000);
    expect(parseTimestamp(' 1700000000')).toBeNull();
    expect(parseTimestamp('1e9')).toBeNull();
    expect(parseTimestamp('')).toBeNull();
  });

  it('reads v1 digests as 32-byte buffers, upper- or lower-case', () => {
    const hex = 'ab'.repeat(32);
    expect(parseSignatures(`v1=${hex}`)).toEqual([Buffer.from(hex, 'hex')]);
    expect(parseSignatures(`v1=${hex.toUpperCase()}`)).toEqual([Buffer.from(hex, 'hex')]);
    expect(parseSignatures(`v1=${hex},`)).toBeNull();
  });

  it('judges freshness symmetrically', () => {
    expect(isFresh(now - TOLERANCE_SECONDS, nowMs)).toBe(true);
    expect(isFresh(now + TOLERANCE_SECONDS, nowMs)).toBe(true);
    expect(isFresh(now + TOLERANCE_SECONDS + 1, nowMs)).toBe(false);
  });
});
