// A small client for the EC2 instance metadata service: IMDSv2 (a session token from PUT
// /latest/api/token, then GETs carrying it), with IMDSv1 plain GETs only as a fallback when no
// token can be had. Short timeouts: off EC2 the service is simply not there. The endpoint can be
// moved with AWS_EC2_METADATA_SERVICE_ENDPOINT (as in the AWS SDKs), which is how tests reach a
// local server instead of the real address.
import http from 'node:http';
import { AmiError, ExitCode } from '../errors.js';

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
const IPV6_IMDS_ENDPOINT = 'http://[fd00:ec2::254]';
const TOKEN_TTL_SECONDS = 21600;
const MAX_BODY = 64 * 1024;

export class MetadataUnavailableError extends AmiError {
  override readonly name = 'MetadataUnavailableError';
  constructor(endpoint: string, reason: string) {
    super(
      `can't access instance metadata at ${endpoint} (${reason})`,
      ExitCode.metadata,
      'if you are not bundling on an EC2 instance use --no-inherit',
    );
  }
}

export interface ImdsOptions {
  readonly endpoint?: string;
  /** Timeout of the token request, in ms (the SDKs use 1 s). */
  readonly tokenTimeoutMs?: number;
  /** Timeout of each read, in ms. */
  readonly timeoutMs?: number;
}

interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** The endpoint from the environment, as the AWS SDKs read it. */
export function imdsEndpointFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.AWS_EC2_METADATA_SERVICE_ENDPOINT?.trim();
  if (explicit) return explicit.replace(/\/+$/, '');
  return env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE?.trim().toLowerCase() === 'ipv6'
    ? IPV6_IMDS_ENDPOINT
    : DEFAULT_IMDS_ENDPOINT;
}

export class ImdsClient {
  readonly endpoint: string;
  private readonly tokenTimeoutMs: number;
  private readonly timeoutMs: number;
  private token: string | undefined;
  private version: 'v2' | 'v1' | undefined;

  constructor(opts: ImdsOptions = {}) {
    this.endpoint = (opts.endpoint ?? imdsEndpointFromEnv()).replace(/\/+$/, '');
    this.tokenTimeoutMs = opts.tokenTimeoutMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** Which protocol the service answered with, once {@link connect} succeeded. */
  get protocol(): 'v2' | 'v1' | undefined {
    return this.version;
  }

  private request(
    method: 'GET' | 'PUT',
    path: string,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(path, `${this.endpoint}/`);
      } catch {
        reject(new Error(`bad metadata endpoint '${this.endpoint}'`));
        return;
      }
      const req = http.request(
        url,
        // No proxy, no keep-alive: the service is link-local and answers in microseconds.
        { method, headers: { ...headers, 'User-Agent': 'amibundle' }, agent: false, timeout: timeoutMs },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < MAX_BODY) body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  private async fetchToken(): Promise<string> {
    const r = await this.request(
      'PUT',
      '/latest/api/token',
      { 'X-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SECONDS) },
      this.tokenTimeoutMs,
    );
    if (r.status !== 200 || r.body.trim() === '') throw new Error(`token request answered HTTP ${r.status}`);
    return r.body.trim();
  }

  /**
   * Finds out whether the service is there and how to talk to it: IMDSv2 first; IMDSv1 when the
   * token request fails (old services, or a PUT that does not get back through a container's
   * hop limit). Throws {@link MetadataUnavailableError} (exit 12) when neither answers.
   */
  async connect(): Promise<'v2' | 'v1'> {
    if (this.version) return this.version;
    let tokenProblem = '';
    try {
      this.token = await this.fetchToken();
      const r = await this.request(
        'GET',
        '/latest/meta-data/',
        { 'X-aws-ec2-metadata-token': this.token },
        this.timeoutMs,
      );
      if (r.status === 200) return (this.version = 'v2');
      tokenProblem = `HTTP ${r.status} with a token`;
    } catch (err) {
      tokenProblem = (err as Error).message;
    }
    this.token = undefined;
    try {
      const r = await this.request('GET', '/latest/meta-data/', {}, this.timeoutMs);
      if (r.status === 200) return (this.version = 'v1');
      throw new Error(`HTTP ${r.status}${r.status === 401 ? ' (the service requires IMDSv2 tokens)' : ''}`);
    } catch (err) {
      throw new MetadataUnavailableError(
        this.endpoint,
        `IMDSv2: ${tokenProblem}; IMDSv1: ${(err as Error).message}`,
      );
    }
  }

  /** The body of `/latest/meta-data/<item>`, trimmed; undefined when absent or unreadable. */
  async get(item: string): Promise<string | undefined> {
    await this.connect();
    const path = `/latest/meta-data/${item}`;
    try {
      let r = await this.request(
        'GET',
        path,
        this.token ? { 'X-aws-ec2-metadata-token': this.token } : {},
        this.timeoutMs,
      );
      if (r.status === 401 && this.version === 'v2') {
        // The token expired (a long copy can outlast it): get a new one once.
        this.token = await this.fetchToken();
        r = await this.request('GET', path, { 'X-aws-ec2-metadata-token': this.token }, this.timeoutMs);
      }
      if (r.status !== 200) return undefined;
      const body = r.body.trim();
      return body === '' ? undefined : body;
    } catch {
      return undefined;
    }
  }

  /** A list item (one value per line). */
  async getList(item: string): Promise<string[] | undefined> {
    const body = await this.get(item);
    if (body === undefined) return undefined;
    return body
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
  }
}
