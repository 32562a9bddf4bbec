import { describe, expect, it } from 'vitest';
import { parseCookies, serializeSessionCookie } from '../../src/api/session-cookie.js';
import { AttemptLimiter } from '../../src/api/sign-in-throttle.js';

describe('session cookie', () => {
  it('parses a Cookie header: first of a name wins, spaces trimmed, quotes removed, junk skipped', () => {
    const c = parseCookies(' a=1; stepwise_session="abc" ;junk; =x; stepwise_session=second; b = 2 ');
    expect(c.get('stepwise_session')).toBe('abc');
    expect(c.get('a')).toBe('1');
    expect(c.get('b')).toBe('2');
    expect(c.has('junk')).toBe(false);
    expect(parseCookies(undefined).size).toBe(0);
  });

  it('serializes with HttpOnly, SameSite=Strict, Path=/ and Secure only when asked', () => {
    expect(serializeSessionCookie('stepwise_session', 'v', { secure: false, maxAgeSeconds: 60.7 })).toBe('stepwise_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60');
    expect(serializeSessionCookie('__Host-stepwise_session', '', { secure: true, maxAgeSeconds: -5 })).toBe(
      '__Host-stepwise_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure',
    );
  });
});

describe('sign-in attempt limiter', () => {
  it('allows `attempts` per window, says when the oldest leaves it, and takes back refunded attempts', () => {
    let now = 1_000_000;
    const limiter = new AttemptLimiter({ attempts: 3, windowMs: 60_000 }, 'email', () => now);
    limiter.take('a');
    limiter.take('a');
    limiter.refund('a');
    limiter.take('a');
    now += 10_000;
    limiter.take('a');
    expect(() => limiter.take('a')).toThrow(expect.objectContaining({ code: 'RATE_LIMITED', details: expect.objectContaining({ retryAfterSeconds: 50, scope: 'email' }) }));
    limiter.take('b');
    now += 50_001;
    limiter.take('a');
  });
});
