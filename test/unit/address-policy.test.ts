import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { classifyAddress, EgressPolicy, parseEgressAllow, type AddressClass } from '../../src/net/address-policy.js';
import { formatIp, parseCidr, parseHost, parseIp } from '../../src/net/ip.js';

function canonical(host: string): string {
  const parsed = parseHost(host);
  if (parsed.kind === 'ip') return formatIp(parsed.ip);
  if (parsed.kind === 'name') return `name:${parsed.name}`;
  return 'invalid';
}

describe('host strings', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'], // short form: the last part fills the rest
    ['127.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'], // decimal
    ['0177.0.0.1', '127.0.0.1'], // octal
    ['0177.1', '127.0.0.1'],
    ['017700000001', '127.0.0.1'], // one octal number
    ['0x7f.1', '127.0.0.1'], // hex
    ['0x7F000001', '127.0.0.1'],
    ['0x7f.0x0.0x0.0x1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'], // one trailing dot, as browsers allow
    ['0xa9fea9fe', '169.254.169.254'],
    ['0', '0.0.0.0'],
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['[::ffff:127.0.0.1]', '::ffff:7f00:1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first longest run of zeros is compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not
    ['fe80::1%eth0', 'fe80::1'],
    ['Portal.Example.COM.', 'name:portal.example.com'],
    ['xn--bcher-kva.example', 'name:xn--bcher-kva.example'],
    ['1e100.net', 'name:1e100.net'],
    ['_dmarc.example.com', 'name:_dmarc.example.com'],
  ])('%s reads as %s', (host, expected) => {
    expect(canonical(host)).toBe(expected);
  });

  it.each(['1.2.3.256', '256.1', '1.2.3.09', '1.2.3.4.5', 'foo.1', 'example.0x10', '4294967296', '', '.', 'a b', 'ex..ample', '-x.example', 'bücher.example', 'host:80', '[example.com]', '::1::2', 'fe80::1%', '[::1'])(
    '%j is not a valid host',
    (host) => {
      expect(canonical(host)).toBe('invalid');
    },
  );

  it('parses CIDR ranges strictly', () => {
    expect(parseCidr('10.0.0.0/8')).not.toBeNull();
    expect(parseCidr('fd00::/8')).not.toBeNull();
    expect(parseCidr('0.0.0.0/0')).not.toBeNull();
    expect(parseCidr('10.1.2.3/8')).toBeNull(); // bits set past the prefix: a likely typo
    expect(parseCidr('10.0.0.0/33')).toBeNull();
    expect(parseCidr('10/8')).toBeNull(); // only dotted-quad bases in ranges
    expect(parseCidr('example.com/8')).toBeNull();
  });
});

describe('classifyAddress', () => {
  const cases: [string, AddressClass][] = [
    // loopback, in every notation
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['127.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::127.0.0.1', 'loopback'], // deprecated IPv4-compatible
    ['64:ff9b::7f00:1', 'loopback'], // NAT64
    ['2002:7f00:1::', 'loopback'], // 6to4
    // private and shared
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['100.127.255.255', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['fec0::1', 'private'],
    // unique-local and link-local
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    // cloud metadata
    ['169.254.169.254', 'metadata'],
    ['0xa9fea9fe', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['fd20:ce::254', 'metadata'],
    // the rest
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['4000::1', 'reserved'], // outside global unicast
    ['::2.3.4.5', 'reserved'], // IPv4-compatible with a public IPv4: still never legitimate
    // public
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['::ffff:8.8.8.8', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['64:ff9b::808:808', 'public'],
  ];
  it.each(cases)('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it('refuses to classify a name', () => {
    expect(() => classifyAddress('localhost')).toThrow(TypeError);
  });
});

describe('STEPWISE_EGRESS_ALLOW', () => {
  it('parses every entry form and skips blanks', () => {
    const entries = parseEgressAllow(' internal.corp , api.corp:8443,10.20.0.0/16,127.0.0.1:8123,[::1]:9000,fd12::/16,::1,,169.254.169.254 ');
    expect(entries.map((e) => [e.kind, e.text])).toEqual([
      ['name', 'internal.corp'],
      ['name', 'api.corp:8443'],
      ['cidr', '10.20.0.0/16'],
      ['address', '127.0.0.1:8123'],
      ['address', '[::1]:9000'],
      ['cidr', 'fd12::/16'],
      ['address', '::1'],
      ['address', '169.254.169.254'],
    ]);
    expect(parseEgressAllow(undefined)).toEqual([]);
    expect(parseEgressAllow('')).toEqual([]);
  });

  it.each(['http://internal.corp', 'host:0', 'host:70000', 'host:abc', '10.1.2.3/8', '10.0.0.0/40', 'a b', '[::1]:x', 'in valid:80', '1.2.3.256'])(
    'names the bad entry %j',
    (entry) => {
      let error: unknown;
      try {
        parseEgressAllow(`ok.example,${entry}`);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toContain(`"${entry}"`);
      expect((error as ValidationError).details).toMatchObject({ path: 'STEPWISE_EGRESS_ALLOW', entry });
    },
  );

  it('is read and validated by loadConfig', () => {
    expect(loadConfig({}).egressAllow).toEqual([]);
    expect(loadConfig({ STEPWISE_EGRESS_ALLOW: 'internal.corp:443' }).egressAllow).toMatchObject([{ kind: 'name', name: 'internal.corp', port: 443 }]);
    expect(() => loadConfig({ STEPWISE_EGRESS_ALLOW: 'internal.corp:443,nope:/' })).toThrow(/STEPWISE_EGRESS_ALLOW entry "nope:\/"/);
  });
});

describe('EgressPolicy', () => {
  it('admits public addresses and refuses the rest with the class as the reason', () => {
    const policy = new EgressPolicy();
    expect(policy.isAdmitted('example.com', 443, '93.184.215.14')).toBe(true);
    expect(policy.decide('example.com', 443, '127.0.0.1')).toEqual({ admitted: false, reason: 'loopback' });
    expect(policy.decide('example.com', 443, '::ffff:127.0.0.1')).toEqual({ admitted: false, reason: 'loopback' });
    expect(policy.decide('example.com', 80, '169.254.169.254')).toEqual({ admitted: false, reason: 'metadata' });
    expect(policy.decide('example.com', 80, parseIp('10.0.0.1')!)).toEqual({ admitted: false, reason: 'private' });
  });

  it('host:port admits that port only', () => {
    const policy = new EgressPolicy('127.0.0.1:8123,internal.corp:8443');
    expect(policy.isAdmitted('127.0.0.1', 8123, '127.0.0.1')).toBe(true);
    expect(policy.isAdmitted('127.0.0.1', 8124, '127.0.0.1')).toBe(false);
    expect(policy.isAdmitted('127.0.0.1', 8123, '127.0.0.2')).toBe(false);
    // The same address in its IPv4-mapped form is the same address.
    expect(policy.isAdmitted('::ffff:127.0.0.1', 8123, '::ffff:127.0.0.1')).toBe(true);
    expect(policy.isAdmitted('internal.corp', 8443, '10.1.2.3')).toBe(true);
    expect(policy.isAdmitted('INTERNAL.corp.', 8443, '10.1.2.3')).toBe(true);
    expect(policy.isAdmitted('internal.corp', 443, '10.1.2.3')).toBe(false);
    // A name entry admits that name, not another name with the same address.
    expect(policy.isAdmitted('other.corp', 8443, '10.1.2.3')).toBe(false);
  });

  it('a bare host or address admits every port', () => {
    const policy = new EgressPolicy('internal.corp,::1');
    expect(policy.isAdmitted('internal.corp', 1, '192.168.0.10')).toBe(true);
    expect(policy.isAdmitted('internal.corp', 65535, 'fd12::10')).toBe(true);
    expect(policy.isAdmitted('[::1]', 5432, '::1')).toBe(true);
    expect(policy.isAdmitted('127.0.0.1', 5432, '127.0.0.1')).toBe(false);
  });

  it('a CIDR admits its range on any port', () => {
    const policy = new EgressPolicy('10.20.0.0/16,fd12::/16');
    expect(policy.isAdmitted('a.corp', 80, '10.20.3.4')).toBe(true);
    expect(policy.isAdmitted('a.corp', 5432, '::ffff:10.20.3.4')).toBe(true);
    expect(policy.isAdmitted('a.corp', 80, '10.21.0.1')).toBe(false);
    expect(policy.isAdmitted('a.corp', 80, 'fd12:1::1')).toBe(true);
    expect(policy.isAdmitted('a.corp', 80, 'fd13::1')).toBe(false);
  });

  it('refuses metadata addresses a range or name would admit, unless the address is named exactly', () => {
    const broad = new EgressPolicy('169.254.0.0/16,100.64.0.0/10,fd00::/8,metadata.google.internal,0.0.0.0/0');
    expect(broad.isAdmitted('x', 80, '169.254.1.1')).toBe(true);
    expect(broad.decide('x', 80, '169.254.169.254')).toEqual({ admitted: false, reason: 'metadata' });
    expect(broad.decide('x', 80, '::ffff:169.254.169.254')).toEqual({ admitted: false, reason: 'metadata' });
    expect(broad.decide('x', 80, '100.100.100.200')).toEqual({ admitted: false, reason: 'metadata' });
    expect(broad.decide('x', 80, 'fd00:ec2::254')).toEqual({ admitted: false, reason: 'metadata' });
    expect(broad.decide('metadata.google.internal', 80, '169.254.169.254')).toEqual({ admitted: false, reason: 'metadata' });

    const exact = new EgressPolicy('169.254.169.254:80');
    expect(exact.isAdmitted('169.254.169.254', 80, '169.254.169.254')).toBe(true);
    expect(exact.isAdmitted('169.254.169.254', 8080, '169.254.169.254')).toBe(false);
    expect(exact.isAdmitted('169.254.169.254', 80, '169.254.170.2')).toBe(false);
  });

  it('refuses localhost names before any resolution unless named', () => {
    const policy = new EgressPolicy('localhost:3000');
    expect(policy.checkHost('localhost', 3001)).toEqual({ admitted: false, reason: 'loopback' });
    expect(policy.checkHost('LOCALHOST.', 3001)).toEqual({ admitted: false, reason: 'loopback' });
    expect(policy.checkHost('app.localhost', 3000)).toEqual({ admitted: false, reason: 'loopback' });
    expect(policy.checkHost('localhost', 3000)).toMatchObject({ admitted: true });
    expect(policy.checkHost('0x7f.1', 80)).toMatchObject({ admitted: true, host: { kind: 'ip' } });
    expect(policy.checkHost('1.2.3.09', 80)).toEqual({ admitted: false, reason: 'invalid-host' });
    expect(policy.checkHost('example.com', 443)).toEqual({ admitted: true, host: { kind: 'name', name: 'example.com' } });
  });
});
