// The instance metadata client against a local stand-in on 127.0.0.1 (never the real address):
// IMDSv2 tokens, the IMDSv1 fallback, expired tokens, and an unreachable or silent service.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { ImdsClient, imdsEndpointFromEnv, MetadataUnavailableError } from '../../src/ec2/imds.js';
import { mergeInherited, readInstanceFacts } from '../../src/ec2/inherit.js';
import { startImdsServer, type ImdsServer } from '../support/imds-server.js';

const instance: Record<string, string> = {
  'ami-id': 'ami-0123456789abcdef0',
  'ancestor-ami-ids': 'ami-11111111\nami-22222222\n',
  'kernel-id': 'aki-88aa75e1',
  'ramdisk-id': 'ari-12345678',
  'product-codes': 'pc-one\npc-two',
  'block-device-mapping/': 'ami\nroot\nephemeral0\nswap',
  'block-device-mapping/ami': 'sda1',
  'block-device-mapping/root': '/dev/sda1',
  'block-device-mapping/ephemeral0': 'sdb',
  'block-device-mapping/swap': 'sda3',
};

let server: ImdsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('ImdsClient', () => {
  it('uses IMDSv2: a token from PUT /latest/api/token, then reads carrying it', async () => {
    server = await startImdsServer('v2-required', instance);
    const client = new ImdsClient({ endpoint: server.endpoint });
    expect(await client.connect()).toBe('v2');
    const facts = await readInstanceFacts(client);
    expect(facts).toEqual({
      ancestry: ['ami-11111111', 'ami-22222222', 'ami-0123456789abcdef0'],
      kernelId: 'aki-88aa75e1',
      ramdiskId: 'ari-12345678',
      productCodes: ['pc-one', 'pc-two'],
      blockDeviceMapping: [
        { virtual: 'ami', device: 'sda1' },
        { virtual: 'root', device: '/dev/sda1' },
        { virtual: 'ephemeral0', device: 'sdb' },
        { virtual: 'swap', device: 'sda3' },
      ],
      unreadable: [],
    });
    expect(server.requests[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token', ttl: '21600' });
    const gets = server.requests.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThan(5);
    expect(gets.every((r) => r.token === server!.tokens[0])).toBe(true);
  });

  it('gets a new token when the old one expired during a long run', async () => {
    server = await startImdsServer('v2-required', instance);
    const client = new ImdsClient({ endpoint: server.endpoint });
    await client.connect();
    server.expireTokens();
    expect(await client.get('kernel-id')).toBe('aki-88aa75e1');
    expect(server.tokens).toHaveLength(2);
  });

  it('falls back to IMDSv1 when there is no token API', async () => {
    server = await startImdsServer('v1-only', instance);
    const client = new ImdsClient({ endpoint: server.endpoint });
    expect(await client.connect()).toBe('v1');
    expect(await client.get('ramdisk-id')).toBe('ari-12345678');
    expect(server.requests[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
    expect(server.requests.filter((r) => r.method === 'GET').every((r) => r.token === undefined)).toBe(true);
  });

  it('reports absent items (as on HVM instances without a kernel id) by name', async () => {
    server = await startImdsServer('v2-optional', { 'ami-id': 'ami-0abc', 'block-device-mapping/': '' });
    const client = new ImdsClient({ endpoint: server.endpoint });
    const facts = await readInstanceFacts(client);
    expect(facts.ancestry).toEqual(['ami-0abc']);
    expect(facts.unreadable).toEqual([
      'ancestor-ami-ids',
      'kernel-id',
      'ramdisk-id',
      'product-codes',
      'block-device-mapping',
    ]);
  });

  it('is unreachable (exit 12, naming --no-inherit) when nothing listens', async () => {
    const client = new ImdsClient({ endpoint: `http://127.0.0.1:${await closedPort()}` });
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataUnavailableError);
    expect((err as MetadataUnavailableError).exitCode).toBe(ExitCode.metadata);
    expect((err as MetadataUnavailableError).hint).toContain('--no-inherit');
  });

  it('gives up within its timeouts when the service never answers', async () => {
    server = await startImdsServer('silent', instance);
    const client = new ImdsClient({ endpoint: server.endpoint, tokenTimeoutMs: 300, timeoutMs: 300 });
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataUnavailableError);
    expect(String((err as Error).message)).toMatch(/no answer within 300 ms/);
  });

  it('is unreachable when the service requires tokens but will not give one', async () => {
    // As when a container's hop limit drops the token's answer: token-less reads are refused too.
    server = await startImdsServer('v2-no-token', instance);
    const client = new ImdsClient({ endpoint: server.endpoint });
    const err = await client.connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataUnavailableError);
    expect(String((err as Error).message)).toMatch(/requires IMDSv2 tokens/);
  });

  it('reads its endpoint from the environment like the AWS SDKs', () => {
    expect(imdsEndpointFromEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9/' })).toBe(
      'http://127.0.0.1:9',
    );
    expect(imdsEndpointFromEnv({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'IPv6' })).toBe(
      'http://[fd00:ec2::254]',
    );
    expect(imdsEndpointFromEnv({})).toBe('http://169.254.169.254');
  });
});

describe('mergeInherited (the reference rules)', () => {
  const facts = {
    ancestry: ['ami-1', 'ami-2'],
    kernelId: 'aki-meta',
    ramdiskId: 'ari-meta',
    productCodes: ['pc-meta'],
    blockDeviceMapping: [{ virtual: 'ami', device: 'sda1' }],
    unreadable: [],
  };
  it('takes every value from the metadata when the command line gave none', () => {
    expect(mergeInherited({}, facts)).toEqual({
      kernelId: 'aki-meta',
      ramdiskId: 'ari-meta',
      productCodes: ['pc-meta'],
      blockDeviceMapping: [{ virtual: 'ami', device: 'sda1' }],
      ancestry: ['ami-1', 'ami-2'],
    });
  });
  it('keeps what the command line gave, value by value; -B replaces the whole mapping', () => {
    expect(
      mergeInherited(
        {
          kernelId: 'aki-mine',
          productCodes: ['pc-mine'],
          blockDeviceMapping: [{ virtual: 'root', device: '/dev/xvda1' }],
        },
        facts,
      ),
    ).toEqual({
      kernelId: 'aki-mine',
      ramdiskId: 'ari-meta',
      productCodes: ['pc-mine'],
      blockDeviceMapping: [{ virtual: 'root', device: '/dev/xvda1' }],
      ancestry: ['ami-1', 'ami-2'],
    });
  });
});
