// A local EBS direct + EC2 Query server on 127.0.0.1 for tests, written from the AWS API reference
// (no EBS direct server can be installed here). One port serves both: paths under /snapshots are
// the EBS direct API (signed for service "ebs"), POST / with a form body is EC2 Query (signed for
// "ec2"). Every request is counted, may meet a fault a test queued, is checked against its
// SigV4 signature, then against denials and throttling, and only then handled.
// See store.ts for the snapshot state machine, ebs-handlers.ts / ec2-handlers.ts for the rules.
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { handleEbs, routeEbs, type EbsContext } from './ebs-handlers.js';
import { handleEc2 } from './ec2-handlers.js';
import { Faults, type ThrottleRates } from './faults.js';
import { ApiError, sendEbsError, sendEc2Error } from './replies.js';
import { verifySigV4, type SigV4Failure } from './sigv4.js';
import { Store } from './store.js';

export { BLOCK_SIZE, BLOCKS_PER_GIB, linearChecksum, type Snapshot, type Image } from './store.js';
export type { Faults, ThrottleRates, Counters, ActionTimeline } from './faults.js';

export interface EbsServerOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  /** The account id snapshots and images belong to. */
  ownerId?: string;
  /** After StartSnapshot the new id is unknown to every call for this long (AWS's eventual consistency). */
  notFoundWindowMs?: number;
  /** CompleteSnapshot → completed (or error) after this long; DescribeSnapshots shows pending meanwhile. */
  completionDelayMs?: number;
  /** How long one of StartSnapshot's Timeout minutes lasts (default a real minute). */
  minuteMs?: number;
  /** AWS account setting "EBS encryption by default". */
  encryptionByDefault?: boolean;
  /** The most entries one ListSnapshotBlocks / ListChangedBlocks page carries, whatever MaxResults says. */
  pageSizeCap?: number;
  throttle?: ThrottleRates;
  /** How far x-amz-date may be from the server's clock (AWS: 15 minutes). */
  maxClockSkewMs?: number;
}

export interface EbsServer {
  /** Endpoint for both the EBS and the EC2 client, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly ownerId: string;
  /** Snapshots and images, for tests to look into (or corrupt). */
  readonly state: Store;
  readonly faults: Faults;
  /** Environment for a child process (awscli, amibundle) to reach this server with these credentials. */
  env(): Record<string, string>;
  close(): Promise<void>;
}

/** Block calls are throttled per snapshot; everything else per class. */
function throttleClass(action: string): 'block' | 'ebs' | 'ec2' {
  if (action === 'PutSnapshotBlock' || action === 'GetSnapshotBlock') return 'block';
  return routeIsEc2(action) ? 'ec2' : 'ebs';
}

const EBS_ACTIONS = new Set([
  'StartSnapshot',
  'PutSnapshotBlock',
  'CompleteSnapshot',
  'ListSnapshotBlocks',
  'GetSnapshotBlock',
  'ListChangedBlocks',
  'UnknownEbsOperation',
]);

function routeIsEc2(action: string): boolean {
  return !EBS_ACTIONS.has(action);
}

/** Request bodies above this are refused before being read further (a block is 512 KiB). */
const MAX_BODY = 2 * 1024 * 1024;

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function ebsAuthError(f: SigV4Failure): ApiError {
  switch (f.kind) {
    case 'missing':
      return new ApiError(403, 'MissingAuthenticationTokenException', f.message);
    case 'unknown-key':
      return new ApiError(403, 'UnrecognizedClientException', f.message);
    case 'incomplete':
      return new ApiError(403, 'IncompleteSignatureException', f.message);
    case 'expired':
    case 'bad-signature':
      return new ApiError(403, 'InvalidSignatureException', f.message);
  }
}

function ec2AuthError(f: SigV4Failure): ApiError {
  switch (f.kind) {
    case 'missing':
      return new ApiError(401, 'MissingAuthenticationToken', 'Request is missing Authentication Token');
    case 'unknown-key':
      return new ApiError(401, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    case 'incomplete':
      return new ApiError(400, 'IncompleteSignature', f.message);
    case 'expired':
      return new ApiError(400, 'RequestExpired', f.message);
    case 'bad-signature':
      return new ApiError(403, 'SignatureDoesNotMatch', f.message);
  }
}

export async function startEbsServer(options: EbsServerOptions = {}): Promise<EbsServer> {
  const accessKeyId = options.accessKeyId ?? 'AKIDEBSTESTSERVER000';
  const secretAccessKey = options.secretAccessKey ?? 'ebs-test-server-secret-key/0123456789abcd';
  const region = options.region ?? 'us-east-1';
  const ownerId = options.ownerId ?? '123456789012';
  const store = new Store(ownerId, {
    notFoundWindowMs: options.notFoundWindowMs ?? 0,
    completionDelayMs: options.completionDelayMs ?? 0,
    minuteMs: options.minuteMs ?? 60_000,
  });
  const faults = new Faults();
  if (options.throttle) faults.setThrottle(options.throttle);
  const creds = { accessKeyId, secretAccessKey, region };
  const maxSkewMs = options.maxClockSkewMs ?? 15 * 60_000;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const ebsContext: EbsContext = {
    store,
    region,
    encryptionByDefault: options.encryptionByDefault ?? false,
    pageSizeCap: options.pageSizeCap,
    corruptThisRead: () => faults.take('GetSnapshotBlock', true) !== undefined,
    countBlockBytesSent: (n) => {
      faults.counters.blockBytesSent += n;
    },
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const route = routeEbs(method, url);
    const isEbs = url.startsWith('/snapshots');
    const form = !isEbs && body ? new URLSearchParams(body.toString('utf8')) : new URLSearchParams();
    const action = isEbs
      ? (route?.action ?? 'UnknownEbsOperation')
      : (form.get('Action') ?? 'UnknownEc2Action');
    const fail = (e: ApiError): void => (isEbs ? sendEbsError(res, e) : sendEc2Error(res, e));
    if (!isEbs) faults.arrived(action, res);
    faults.count(action, body?.length ?? 0);
    if (body === undefined)
      return fail(new ApiError(413, 'RequestEntityTooLarge', 'The request body is too large.'));

    const fault = faults.take(action);
    if (fault?.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'stall') {
      if (Number.isFinite(fault.ms)) {
        const t = setTimeout(() => {
          timers.delete(t);
          req.socket.destroy();
        }, fault.ms);
        timers.add(t);
      }
      return;
    }
    if (fault?.kind === 'hold') {
      const until = Date.now() + fault.maxMs;
      while (!fault.until() && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    }
    if (fault?.kind === 'status') {
      if (isEbs)
        return fail(
          fault.status === 503
            ? new ApiError(503, 'ServiceUnavailableException', 'Service is unavailable; please retry.')
            : new ApiError(
                fault.status,
                'InternalServerException',
                'An internal error occurred; please retry.',
              ),
        );
      return fail(
        fault.status === 503
          ? new ApiError(503, 'Unavailable', 'The server is overloaded and cannot handle the request.')
          : new ApiError(fault.status, 'InternalError', 'An internal error has occurred.'),
      );
    }

    const authFailure = verifySigV4(req, body, creds, {
      service: isEbs ? 'ebs' : 'ec2',
      unsignedPayloadAllowed: action === 'PutSnapshotBlock',
      maxSkewMs,
    });
    if (authFailure) return fail(isEbs ? ebsAuthError(authFailure) : ec2AuthError(authFailure));

    if (faults.isDenied(action))
      return fail(
        isEbs
          ? new ApiError(
              403,
              'AccessDeniedException',
              `User is not authorized to perform: ebs:${action}`,
              'UNAUTHORIZED_ACCOUNT',
            )
          : new ApiError(
              403,
              'UnauthorizedOperation',
              `You are not authorized to perform this operation (ec2:${action}).`,
            ),
      );

    const cls = throttleClass(action);
    if (!faults.admit(cls, cls === 'block' ? (route?.snapshotId ?? '') : cls)) {
      faults.countThrottled(action);
      if (cls === 'block')
        return fail(
          new ApiError(
            400,
            'RequestThrottledException',
            'The request rate for this snapshot is too high.',
            'RESOURCE_LEVEL_THROTTLE',
          ),
        );
      if (cls === 'ebs') return fail(new ApiError(400, 'ThrottlingException', 'Rate exceeded'));
      return fail(new ApiError(503, 'RequestLimitExceeded', 'Request limit exceeded.'));
    }

    if (isEbs) {
      if (!route)
        return fail(new ApiError(404, 'UnknownOperationException', `No operation at ${method} ${url}.`));
      return handleEbs(ebsContext, route, req, body, res);
    }
    if (method !== 'POST' || (url !== '/' && !url.startsWith('/?')))
      return fail(new ApiError(400, 'InvalidAction', `No EC2 action at ${method} ${url}.`));
    if (!form.get('Action'))
      return fail(new ApiError(400, 'MissingAction', 'The request must contain the parameter Action'));
    return handleEc2(store, action, form, res);
  };

  const server = http.createServer((req, res) => {
    // EBS calls are open from their head's arrival (a block's body takes a while); EC2 ones once read.
    let ebsRoute;
    try {
      ebsRoute = routeEbs(req.method ?? 'GET', req.url ?? '/');
    } catch {
      ebsRoute = undefined; // a malformed path: handle() answers it
    }
    if (ebsRoute) faults.arrived(ebsRoute.action, res);
    handle(req, res).catch((e: unknown) => {
      const isEbs = (req.url ?? '').startsWith('/snapshots');
      const err =
        e instanceof ApiError
          ? e
          : new ApiError(500, isEbs ? 'InternalServerException' : 'InternalError', String(e));
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (isEbs) sendEbsError(res, err);
      else sendEc2Error(res, err);
    });
  });
  // Idle keep-alive connections stay open as long as at AWS's front ends: a client reusing one
  // the server has just timed out would see a reset no real endpoint causes that often.
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    accessKeyId,
    secretAccessKey,
    region,
    ownerId,
    state: store,
    faults,
    env: () => ({
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
