import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { DecryptError, generateKeyEntry, loadKeyRing, parseKeyRing } from '../../src/security/crypto.js';
import { csvCell, toCsv } from '../../src/api/csv.js';
import { credentialRefs, Redactor, REDACTED } from '../../src/engine/credentials.js';
import type { StepDefinition } from '../../src/engine/steps/registry.js';

const k = () => randomBytes(32).toString('base64');

describe('STEPWISE_ENCRYPTION_KEYS', () => {
  it('parses id:base64 entries, newest first', () => {
    const ring = parseKeyRing(`new:${k()}, old:${k()}`);
    expect(ring.currentKeyId).toBe('new');
    expect(ring.keyIds).toEqual(['new', 'old']);
  });

  it.each([
    ['', /is empty/],
    ['nokey', /must be <id>:<base64 key>/],
    [`bad id:${k()}`, /key id must be/],
    ['a:not*base64', /not base64/],
    [`a:${randomBytes(16).toString('base64')}`, /must be 32 bytes.*got 16/],
    [`a:${k()},a:${k()}`, /appears twice/],
  ])('refuses %j with a clear error', (raw, message) => {
    expect(() => parseKeyRing(raw)).toThrow(message);
  });
});

describe('AES-256-GCM key ring', () => {
  const older = generateKeyEntry();
  const newer = generateKeyEntry();
  const ring = parseKeyRing(`${newer},${older}`);

  it('round-trips, binds the associated data, and detects tampering', () => {
    const sealed = ring.sealJson({ token: 'abc' }, 'credential:1:org');
    expect(sealed.keyId).toBe(ring.currentKeyId);
    expect(ring.openJson(sealed, 'credential:1:org')).toEqual({ token: 'abc' });
    expect(() => ring.open(sealed, 'credential:1:other-org')).toThrow(DecryptError);
    const flipped = Buffer.from(sealed.ciphertext);
    flipped[0] = flipped[0]! ^ 1;
    expect(() => ring.open({ ...sealed, ciphertext: flipped }, 'credential:1:org')).toThrow(DecryptError);
  });

  it('opens what an older key sealed while that key is still in the ring, and says which key is missing when not', () => {
    const oldOnly = parseKeyRing(older);
    const sealed = oldOnly.seal(Buffer.from('x'), 'aad');
    expect(ring.open(sealed, 'aad').toString()).toBe('x');
    expect(() => parseKeyRing(newer).open(sealed, 'aad')).toThrow(/not in STEPWISE_ENCRYPTION_KEYS/);
  });
});

describe('embedded key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stepwise-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated once (mode 0600) and reused; the environment wins; a server without it has no ring', () => {
    const first = loadKeyRing({}, { embedded: true, dataDir: dir });
    expect(first.generatedFile).toBe(join(dir, 'encryption-keys'));
    expect(statSync(first.generatedFile!).mode & 0o777).toBe(0o600);
    const second = loadKeyRing({}, { embedded: true, dataDir: dir });
    expect(second.generatedFile).toBeUndefined();
    expect(second.ring!.currentKeyId).toBe(first.ring!.currentKeyId);
    expect(readFileSync(first.generatedFile!, 'utf8')).toContain(`${first.ring!.currentKeyId}:`);
    const fromEnv = loadKeyRing({ STEPWISE_ENCRYPTION_KEYS: `env:${k()}` }, { embedded: true, dataDir: dir });
    expect(fromEnv.ring!.currentKeyId).toBe('env');
    expect(loadKeyRing({}, { embedded: false, dataDir: dir }).ring).toBeNull();
  });
});

describe('credential references and redaction', () => {
  it('finds the credentials a step names in templates and expressions', () => {
    const steps: StepDefinition[] = [
      {
        id: 's',
        type: 'http',
        method: 'POST',
        url: 'https://x/{{ credentials.a.path }}',
        headers: { authorization: 'Bearer {{ credentials.b.token }}', plain: 'credentials.notatemplate' },
        body: { k: '{{ $uppercase(credentials.c.k) }}' },
      },
      { id: 't', type: 'transform', expression: 'credentials.d.x & input.y' },
      { id: 'n', type: 'http', method: 'GET', url: 'https://x/{{ input.id }}' },
      { id: 'l', type: 'log', message: 'as {{ credentials.e.user }}' },
      { id: 'w', type: 'wait', signal: 'credentials' },
    ];
    expect(steps.map((s) => credentialRefs(s))).toEqual([['a', 'b', 'c'], ['d'], [], ['e'], []]);
  });

  it('replaces secret values anywhere in a value, longest first, and leaves short values alone', () => {
    const r = new Redactor({ api: { token: 'abcd1234', prefix: 'abcd', pin: 12345, flag: true, tiny: 'ab' } });
    expect(r.value({ h: 'Bearer abcd1234', list: ['xabcd1234y', 12345], ab: 'ab' })).toEqual({
      h: `Bearer ${REDACTED}`,
      list: [`x${REDACTED}y`, REDACTED],
      ab: 'ab',
    });
  });

  it('keeps a key named __proto__ as a key', () => {
    const r = new Redactor({ api: { token: 'abcd1234' } });
    const out = r.value(JSON.parse('{"__proto__": "abcd1234", "a": 1}') as Record<string, unknown>);
    expect(Object.keys(out)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(out)).toBe(`{"__proto__":"${REDACTED}","a":1}`);
  });

  it("leaves the fields that only address a known provider's service, and redacts the rest of its secret", () => {
    const secret = { host: 'smtp.example.com', port: 2525, from: 'ops@example.com', user: 'mailer-user', password: 'hunter22' };
    const r = new Redactor({ mail: secret, other: { host: 'db.internal' } }, { mail: 'smtp', other: 'custom' });
    expect(r.text('smtp.example.com:2525 as mailer-user/hunter22 from ops@example.com via db.internal')).toBe(
      `smtp.example.com:2525 as ${REDACTED}/${REDACTED} from ops@example.com via ${REDACTED}`,
    );
  });
});

describe('CSV', () => {
  it('quotes per RFC 4180 and neutralises formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('-1+2')).toBe("'-1+2");
    expect(csvCell(null)).toBe('');
    expect(csvCell(['a', 'b'])).toBe('a;b');
    expect(toCsv([{ header: 'x', value: (r: { x: string }) => r.x }], [{ x: '1' }])).toBe('x\r\n1\r\n');
  });
});
