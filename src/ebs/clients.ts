// The EBS direct and EC2 clients as amibundle uses them: credentials and region from the SDK's
// default chain unless given, an endpoint override for test servers, keep-alive sockets for the
// parallel block requests, a connection timeout plus a stall timeout per request, and the SDK's
// own retries OFF (maxAttempts 1) so that retry.ts is the only retry layer: nested retries
// multiply (coldsnap's users counted 36 attempts per block). The EC2 SDK is loaded only when an
// EC2 call is made: it is one 2 MB module that takes 1-3 s of CPU to load on a busy 2-core machine,
// while an upload or a read of a completed snapshot may need no EC2 call at all.
import http from 'node:http';
import https from 'node:https';
import { EBSClient } from '@aws-sdk/client-ebs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { AmiError, ExitCode } from '../errors.js';
import { MAX_CONNECT_TIMEOUT_MS, type EbsConnectionConfig } from './connection.js';

export type Ec2Sdk = typeof import('@aws-sdk/client-ec2');

let ec2Sdk: Promise<Ec2Sdk> | undefined;

/** The EC2 SDK module (its command classes), loaded on first use. */
export function loadEc2Sdk(): Promise<Ec2Sdk> {
  return (ec2Sdk ??= import('@aws-sdk/client-ec2'));
}

export interface EbsClients {
  readonly ebs: EBSClient;
  /** The EC2 client, created (and its SDK loaded) on the first send. */
  readonly ec2: Pick<EC2Client, 'send'>;
  /** Closes the sockets; call once the run is over. */
  destroy(): void;
}

function requestHandler(conn: EbsConnectionConfig, agents: { http: http.Agent; https: https.Agent }) {
  return {
    connectionTimeout: Math.min(conn.timeoutMs, MAX_CONNECT_TIMEOUT_MS),
    // Silence on the socket this long (sending, waiting, or receiving) fails the request.
    socketTimeout: conn.timeoutMs,
    // And no single attempt may take more than a few stall periods in all.
    requestTimeout: conn.timeoutMs * 4,
    throwOnRequestTimeout: true,
    httpAgent: agents.http,
    httpsAgent: agents.https,
  };
}

export function createEbsClients(conn: EbsConnectionConfig): EbsClients {
  // The SDK nags on Node 20 at client construction; the message is not for amibundle's users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const maxSockets = conn.concurrency + 4;
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets }),
    https: new https.Agent({ keepAlive: true, maxSockets }),
  };
  const common = {
    ...(conn.region !== undefined ? { region: conn.region } : {}),
    ...(conn.credentials !== undefined ? { credentials: conn.credentials } : {}),
    maxAttempts: 1,
    requestHandler: requestHandler(conn, agents),
  };
  const ebs = new EBSClient({
    ...common,
    ...(conn.ebsEndpoint !== undefined ? { endpoint: conn.ebsEndpoint } : {}),
  });
  let ec2: EC2Client | undefined;
  let ec2Ready: Promise<EC2Client> | undefined;
  const ec2Client = (): Promise<EC2Client> =>
    (ec2Ready ??= loadEc2Sdk().then(
      (sdk) =>
        (ec2 = new sdk.EC2Client({
          ...common,
          ...(conn.ec2Endpoint !== undefined ? { endpoint: conn.ec2Endpoint } : {}),
        })),
    ));
  const send = (...args: unknown[]): Promise<unknown> =>
    ec2Client().then((client) => (client.send as (...a: unknown[]) => Promise<unknown>).apply(client, args));
  return {
    ebs,
    ec2: { send: send as EC2Client['send'] },
    destroy() {
      ebs.destroy();
      ec2?.destroy();
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/**
 * Resolves the region and the credentials once, before any request, so that "none found" is one
 * clear line instead of a failure per block. The SDK's messages name providers, never secrets.
 */
export async function checkEbsSetup(clients: EbsClients, conn: EbsConnectionConfig): Promise<string> {
  let region: string;
  try {
    region = await clients.ebs.config.region();
  } catch (err) {
    throw new AmiError(
      'no AWS region found: give --region, or set AWS_REGION, or a region in the AWS profile',
      ExitCode.usage,
      undefined,
      { cause: err },
    );
  }
  if (conn.credentials === undefined) {
    try {
      await clients.ebs.config.credentials();
    } catch (err) {
      throw new AmiError(
        'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run on an instance with an instance profile',
        ExitCode.usage,
        undefined,
        { cause: err },
      );
    }
  }
  return region;
}
