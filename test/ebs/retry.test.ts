// The one retry layer: which failures another attempt can fix, decided on the error objects the
// real SDK clients produce from AWS-shaped answers (restJson1 for EBS direct, the EC2 Query XML
// error document), and how many requests each kind of failure costs.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEbsClients, type EbsClients } from '../../src/ebs/clients.js';
import type { EbsConnectionConfig } from '../../src/ebs/connection.js';
import { classify, EbsError, withEbsRetry } from '../../src/ebs/retry.js';

type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;

let answers: Answer[] = [];
let requests = 0;
let server: http.Server;
let endpoint: string;
let clients: EbsClients;

const conn = (): EbsConnectionConfig => ({
  region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' },
  ebsEndpoint: endpoint,
  ec2Endpoint: endpoint,
  concurrency: 4,
  timeoutMs: 1000,
  retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
});

function ebsError(status: number, type: string, message: string, extra: object = {}): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
    res.end(JSON.stringify({ Message: message, ...extra }));
  };
}

function ec2Error(status: number, code: string): Answer {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code><Message>${code} happened</Message></Error></Errors><RequestID>r-1</RequestID></Response>`,
    );
  };
}

const listOk: Answer = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ Blocks: [], VolumeSize: 1, BlockSize: 524288 }));
};
const reset: Answer = (req) => req.socket.destroy();
const stall: Answer = () => undefined;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      const answer = answers.length > 1 ? answers.shift()! : answers[0]!;
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  clients = createEbsClients(conn());
});

afterAll(async () => {
  clients.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests = 0;
});

async function sdkErrorOf(answer: Answer, ec2 = false): Promise<unknown> {
  answers = [answer];
  try {
    if (ec2) await clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-1'] }));
    else await clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: 'snap-1' }));
  } catch (err) {
    return err;
  }
  throw new Error('the request succeeded');
}

describe('classify (real SDK errors)', () => {
  it('throttling codes of EBS direct and EC2 are throttling', async () => {
    expect(
      classify(
        await sdkErrorOf(ebsError(400, 'RequestThrottledException', 'slow', { Reason: 'ACCOUNT_THROTTLED' })),
      ),
    ).toBe('throttled');
    expect(classify(await sdkErrorOf(ebsError(400, 'ThrottlingException', 'slow')))).toBe('throttled');
    expect(classify(await sdkErrorOf(ec2Error(503, 'RequestLimitExceeded'), true))).toBe('throttled');
  });

  it('5xx is a server failure, also from EC2', async () => {
    expect(classify(await sdkErrorOf(ebsError(500, 'InternalServerException', 'boom')))).toBe('server');
    expect(classify(await sdkErrorOf(ec2Error(500, 'InternalError'), true))).toBe('server');
  });

  it('AccessDenied and validation errors are fatal, except "Failed to read block data"', async () => {
    expect(
      classify(
        await sdkErrorOf(ebsError(403, 'AccessDeniedException', 'no', { Reason: 'UNAUTHORIZED_ACCOUNT' })),
      ),
    ).toBe('fatal');
    expect(classify(await sdkErrorOf(ec2Error(403, 'UnauthorizedOperation'), true))).toBe('fatal');
    expect(
      classify(
        await sdkErrorOf(
          ebsError(400, 'ValidationException', 'bad token', { Reason: 'INVALID_BLOCK_TOKEN' }),
        ),
      ),
    ).toBe('fatal');
    expect(
      classify(
        await sdkErrorOf(
          ebsError(400, 'ValidationException', 'Failed to read block data', { Reason: 'INVALID_BLOCK' }),
        ),
      ),
    ).toBe('server');
  });

  it('not found is its own kind (retried only right after StartSnapshot)', async () => {
    expect(classify(await sdkErrorOf(ebsError(404, 'ResourceNotFoundException', 'no such snapshot')))).toBe(
      'not-found',
    );
    expect(classify(await sdkErrorOf(ec2Error(400, 'InvalidSnapshot.NotFound'), true))).toBe('not-found');
  });

  it('resets and stalls are network failures', async () => {
    expect(classify(await sdkErrorOf(reset))).toBe('network');
    expect(classify(await sdkErrorOf(stall))).toBe('network');
  });
});

describe('withEbsRetry', () => {
  const run = (notFoundMayClear = false) =>
    withEbsRetry(
      conn().retry,
      { op: 'ListSnapshotBlocks', snapshotId: 'snap-1' },
      () => clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: 'snap-1' })),
      { notFoundMayClear },
    );

  it('retries throttling, 5xx and resets, then succeeds', async () => {
    answers = [
      ebsError(400, 'RequestThrottledException', 'slow'),
      ebsError(503, 'InternalServerException', 'busy'),
      reset,
      listOk,
    ];
    await expect(run()).resolves.toMatchObject({ VolumeSize: 1 });
    expect(requests).toBe(4);
  });

  it('gives up after the bounded number of attempts, naming the request', async () => {
    answers = [ebsError(500, 'InternalServerException', 'boom')];
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EbsError);
    expect((err as EbsError).message).toMatch(
      /ListSnapshotBlocks failed for snapshot snap-1: HTTP 500 .*after 4 attempts/,
    );
    expect(requests).toBe(4);
  });

  it('sends AccessDenied exactly once (the SDK does not retry either)', async () => {
    answers = [ebsError(403, 'AccessDeniedException', 'no')];
    const err = await run().catch((e: unknown) => e);
    expect((err as EbsError).code).toBe('AccessDeniedException');
    expect((err as EbsError).exitCode).toBe(3);
    expect(requests).toBe(1);
  });

  it('waits out "not found" only when told the resource may not exist yet', async () => {
    answers = [ebsError(404, 'ResourceNotFoundException', 'no such snapshot'), listOk];
    await expect(run()).rejects.toThrow(/ResourceNotFoundException/);
    expect(requests).toBe(1);
    requests = 0;
    answers = [ebsError(404, 'ResourceNotFoundException', 'no such snapshot'), listOk];
    await expect(run(true)).resolves.toMatchObject({ VolumeSize: 1 });
    expect(requests).toBe(2);
  });

  it('retries a stalled request after the stall timeout', async () => {
    answers = [stall, listOk];
    await expect(run()).resolves.toMatchObject({ VolumeSize: 1 });
    expect(requests).toBe(2);
  });
});
