import { once } from 'node:events';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy } from '../../src/net/address-policy.js';
import { connectEgress, resolveEgress } from '../../src/net/egress.js';
import { EgressDeniedError, EgressUnreachableError } from '../../src/net/errors.js';
import { closedPort, selfSignedCertificate, startEchoServer, tableLookup } from '../helpers/egress.js';

async function denial(promise: Promise<unknown>): Promise<EgressDeniedError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EgressDeniedError);
  return err as EgressDeniedError;
}

async function roundTrip(socket: Socket, text: string): Promise<string> {
  socket.write(text);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  return chunk.toString();
}

describe('resolveEgress', () => {
  const lookup = tableLookup({
    'evil.example': ['127.0.0.1'],
    'evil6.example': ['::1'],
    'mapped.example': ['::ffff:127.0.0.1'],
    'meta.example': ['169.254.169.254'],
    'mixed.example': ['93.184.215.14', '10.0.0.7'],
    'public.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c', '93.184.215.14'],
  });
  const policy = new EgressPolicy();

  it.each([
    ['evil.example', 'loopback'],
    ['evil6.example', 'loopback'],
    ['mapped.example', 'loopback'],
    ['meta.example', 'metadata'],
    ['mixed.example', 'private'], // one internal address refuses the whole name
  ])('refuses %s (it resolves to a %s address) without naming the address', async (host, reason) => {
    const err = await denial(resolveEgress(host, 443, { policy, lookup }));
    expect(err.code).toBe('EGRESS_DENIED');
    expect(err.reason).toBe(reason);
    expect(err.message).toContain(host);
    expect(err.message).toContain(`resolves to a`);
    expect(err.message).not.toMatch(/127\.0\.0\.1|::1|169\.254|10\.0\.0\.7|ffff/);
    expect(err.data).toEqual({ host, port: 443, reason });
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['[::1]', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['0xa9fea9fe', 'metadata'],
    ['10.1.2.3', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['localhost', 'loopback'],
    ['LocalHost.', 'loopback'],
    ['api.localhost', 'loopback'],
    ['1.2.3.09', 'invalid-host'],
    ['exa mple.com', 'invalid-host'],
  ])('refuses %s as %s without any lookup', async (host, reason) => {
    const counting = tableLookup({});
    const err = await denial(resolveEgress(host, 80, { policy, lookup: counting }));
    expect(err.reason).toBe(reason);
    expect(err.message).toContain(host);
    expect(counting.calls.size).toBe(0);
  });

  it('refuses an invalid port', async () => {
    expect((await denial(resolveEgress('public.example', 0, { policy, lookup }))).reason).toBe('invalid-port');
    expect((await denial(resolveEgress('public.example', 70000, { policy, lookup }))).reason).toBe('invalid-port');
  });

  it('admits a public name with all its addresses, deduplicated and canonical', async () => {
    const target = await resolveEgress('Public.Example.', 443, { policy, lookup });
    expect(target.servername).toBe('public.example');
    expect(target.addresses).toEqual([
      { address: '93.184.215.14', family: 4 },
      { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
    ]);
  });

  it('says a name that does not resolve is unreachable, not denied', async () => {
    const err = await resolveEgress('nowhere.example', 443, { policy, lookup }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressUnreachableError);
    expect((err as EgressUnreachableError).code).toBe('EGRESS_UNREACHABLE');
    expect((err as EgressUnreachableError).systemCode).toBe('ENOTFOUND');
  });

  it('uses the system resolver by default (localhost, admitted only when named)', async () => {
    expect((await denial(resolveEgress('localhost', 9, { policy }))).reason).toBe('loopback');
    const target = await resolveEgress('localhost', 9, { policy: new EgressPolicy('localhost:9') });
    expect(target.addresses.length).toBeGreaterThan(0);
    expect(target.addresses.every((a) => a.address === '::1' || a.address.startsWith('127.'))).toBe(true);
  }, 10_000);
});

describe('connectEgress', () => {
  let echo: Awaited<ReturnType<typeof startEchoServer>>;
  beforeAll(async () => {
    echo = await startEchoServer();
  });
  afterAll(async () => {
    await echo.close();
  });

  it('connects to an allowed loopback port, resolving exactly once', async () => {
    // A rebinding resolver: the first answer is the admitted address, any later one would be elsewhere.
    let calls = 0;
    const rebinding = async () => (++calls === 1 ? [{ address: '127.0.0.1', family: 4 as const }] : [{ address: '10.9.9.9', family: 4 as const }]);
    const policy = new EgressPolicy(`127.0.0.1:${echo.port}`);
    const socket = await connectEgress('fixture.test', echo.port, { policy, lookup: rebinding });
    expect(socket.remoteAddress).toBe('127.0.0.1');
    expect(await roundTrip(socket, 'ping')).toBe('ping');
    socket.destroy();
    expect(calls).toBe(1);
  });

  it('refuses another port on 127.0.0.1 before connecting', async () => {
    const policy = new EgressPolicy(`127.0.0.1:${echo.port}`);
    const before = echo.connections();
    const err = await denial(connectEgress('127.0.0.1', echo.port + 1, { policy }));
    expect(err.reason).toBe('loopback');
    const viaName = await denial(connectEgress('evil.test', echo.port + 1, { policy, lookup: tableLookup({ 'evil.test': ['127.0.0.1'] }) }));
    expect(viaName.message).toBe(`connection to evil.test:${echo.port + 1} refused: evil.test resolves to a loopback address`);
    expect(echo.connections()).toBe(before);
  });

  it('tries the next checked address when one refuses', async () => {
    const dead = await closedPort();
    const policy = new EgressPolicy('127.0.0.0/8');
    // Same port on two addresses: the first has nothing listening, the second is the echo server.
    const lookup = tableLookup({ 'two.test': ['127.0.0.2', '127.0.0.1'] });
    const socket = await connectEgress('two.test', echo.port, { policy, lookup }).catch(async (err: unknown) => {
      // Some sandboxes route only 127.0.0.1; then at least the error must be the typed one.
      expect(err).toBeInstanceOf(EgressUnreachableError);
      return null;
    });
    if (socket) {
      expect(socket.remoteAddress).toBe('127.0.0.1');
      socket.destroy();
    }
    const err = await connectEgress('down.test', dead, { policy, lookup: tableLookup({ 'down.test': ['127.0.0.1'] }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressUnreachableError);
    expect((err as Error).message).toBe(`could not connect to down.test:${dead} (ECONNREFUSED)`);
  });

  it('speaks TLS with the host name as SNI and for the certificate check, not the address', async () => {
    const { key, cert } = selfSignedCertificate('fixture.test');
    const seen: (string | false | null)[] = [];
    const server = createTlsServer({ key, cert }, (socket: TLSSocket) => {
      seen.push(socket.servername);
      socket.on('error', () => socket.destroy());
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const policy = new EgressPolicy(`127.0.0.1:${port}`);
      const lookup = tableLookup({ 'fixture.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
      const socket = (await connectEgress('fixture.test', port, { policy, lookup, tls: { ca: cert } })) as TLSSocket;
      expect(socket.authorized).toBe(true);
      expect(await roundTrip(socket, 'over tls')).toBe('over tls');
      socket.destroy();
      expect(seen).toEqual(['fixture.test']);
      // Another name on the same address does not match the certificate.
      const err = await connectEgress('other.test', port, { policy, lookup, tls: { ca: cert } }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      server.close();
    }
  });
});
