// The AWS SDK S3 client as amibundle uses it: SigV4, path-style for S3-compatible endpoints,
// checksums only where S3 requires them (what S3-compatible servers understand), keep-alive
// sockets for the parallel requests, and no SDK retries: retry.ts decides and counts them.
import http from 'node:http';
import https from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { AmiError, ExitCode } from '../errors.js';
import type { S3ConnectionConfig } from './connection.js';

/** Sockets shared by the clients of one run (a region change makes a second client). */
export interface Agents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

export function createAgents(concurrency: number): Agents {
  const maxSockets = concurrency + 4;
  return {
    http: new http.Agent({ keepAlive: true, maxSockets }),
    https: new https.Agent({ keepAlive: true, maxSockets }),
  };
}

export function createS3Client(conn: S3ConnectionConfig, region: string, agents: Agents): S3Client {
  // The SDK nags on Node 20 at client construction; the message is not for amibundle's users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({
    region,
    ...(conn.endpoint !== undefined ? { endpoint: conn.endpoint, forcePathStyle: true } : {}),
    ...(conn.credentials !== undefined ? { credentials: conn.credentials } : {}),
    maxAttempts: 1,
    followRegionRedirects: conn.endpoint === undefined,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      requestTimeout: conn.timeoutMs,
      connectionTimeout: Math.min(conn.timeoutMs, 30_000),
      throwOnRequestTimeout: true,
      httpAgent: agents.http,
      httpsAgent: agents.https,
    },
  });
  // Every upload carries Content-MD5, which is signed: S3 refuses a body that does not match
  // it, so hashing each 10 MiB body once more with SHA-256 for the signature buys nothing.
  client.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { method?: unknown; headers?: Record<string, string> };
      if (request.method === 'PUT' && request.headers?.['content-md5'] !== undefined)
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'amibundleUnsignedPayload' },
  );
  return client;
}

/**
 * Resolves the credentials once, before any request, so that "none found" is one clear line
 * instead of a failure per part. The SDK's messages name providers, never secrets.
 */
export async function checkCredentials(client: S3Client, conn: S3ConnectionConfig): Promise<void> {
  if (conn.credentials !== undefined) return;
  try {
    await client.config.credentials();
  } catch (err) {
    throw new AmiError(
      'no AWS credentials found: give -a/--access-key and -s/--secret-key, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run on an instance with an instance profile',
      ExitCode.usage,
      undefined,
      { cause: err },
    );
  }
}

export function destroyAgents(agents: Agents): void {
  agents.http.destroy();
  agents.https.destroy();
}
