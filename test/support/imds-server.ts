// A local stand-in for the EC2 instance metadata service on 127.0.0.1, for tests: IMDSv2 with
// tokens required (as on current instances) or optional, IMDSv1 only (no token API), tokens
// required but none handed out, or silent (never answers). It records every request it sees.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ImdsMode = 'v2-required' | 'v2-optional' | 'v1-only' | 'v2-no-token' | 'silent';

export interface ImdsRequest {
  readonly method: string;
  readonly path: string;
  /** The token the request carried, if any. */
  readonly token?: string;
  readonly ttl?: string;
}

export interface ImdsServer {
  /** For AWS_EC2_METADATA_SERVICE_ENDPOINT, e.g. `http://127.0.0.1:40123`. */
  readonly endpoint: string;
  readonly requests: ImdsRequest[];
  /** Tokens handed out so far. */
  readonly tokens: string[];
  /** Makes every token handed out so far invalid (as if they had expired). */
  expireTokens(): void;
  close(): Promise<void>;
}

/**
 * `data` maps paths below /latest/meta-data/ to bodies, e.g. `{ 'kernel-id': 'aki-1234' }`;
 * listings ("block-device-mapping/") are given explicitly like any other item. The root
 * listing (`/latest/meta-data/`) is made from the keys when not given.
 */
export async function startImdsServer(mode: ImdsMode, data: Record<string, string>): Promise<ImdsServer> {
  const requests: ImdsRequest[] = [];
  const tokens: string[] = [];
  const valid = new Set<string>();
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer((req, res) => {
    const token = req.headers['x-aws-ec2-metadata-token'];
    const ttl = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
    requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      ...(typeof token === 'string' ? { token } : {}),
      ...(typeof ttl === 'string' ? { ttl } : {}),
    });
    if (mode === 'silent') return; // never answers
    const send = (status: number, body = ''): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(body);
    };
    const url = req.url ?? '/';
    if (url === '/latest/api/token') {
      if (mode === 'v1-only') return send(404, 'Not Found');
      if (mode === 'v2-no-token') return send(403, 'Forbidden');
      if (req.method !== 'PUT') return send(405);
      if (typeof ttl !== 'string' || !/^\d+$/.test(ttl)) return send(400, 'Missing TTL');
      const t = crypto.randomBytes(24).toString('base64');
      tokens.push(t);
      valid.add(t);
      return send(200, t);
    }
    if (req.method !== 'GET') return send(405);
    if (typeof token === 'string' && mode !== 'v1-only' && !valid.has(token)) return send(401);
    if ((mode === 'v2-required' || mode === 'v2-no-token') && typeof token !== 'string') return send(401);
    const prefix = '/latest/meta-data/';
    if (!url.startsWith(prefix)) return send(404, 'Not Found');
    const item = decodeURIComponent(url.slice(prefix.length));
    if (item === '' && data[''] === undefined)
      return send(
        200,
        [...new Set(Object.keys(data).map((k) => k.split('/')[0] + (k.includes('/') ? '/' : '')))].join('\n'),
      );
    const body = data[item];
    if (body === undefined) return send(404, 'Not Found');
    return send(200, body);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    tokens,
    expireTokens: () => valid.clear(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
