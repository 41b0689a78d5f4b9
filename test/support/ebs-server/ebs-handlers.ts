// The EBS direct API operations of the test server (REST + JSON, API version 2019-11-02), strict
// where the API reference is: 512 KiB blocks with their SHA-256, block indexes within the volume
// size, writes only while pending, reads only once completed, block and page tokens this server
// issued, the LINEAR aggregate checksum and ChangedBlocksCount checked at completion, and the
// encryption combinations StartSnapshot refuses.
import crypto from 'node:crypto';
import type http from 'node:http';
import { ApiError, sendJson } from './replies.js';
import { BLOCK_SIZE, BLOCKS_PER_GIB, linearChecksum, type Snapshot, type Store, type Tag } from './store.js';

export type EbsAction =
  | 'StartSnapshot'
  | 'PutSnapshotBlock'
  | 'CompleteSnapshot'
  | 'ListSnapshotBlocks'
  | 'GetSnapshotBlock'
  | 'ListChangedBlocks';

export interface EbsRoute {
  readonly action: EbsAction;
  readonly snapshotId?: string;
  readonly blockIndex?: string;
  readonly query: URLSearchParams;
}

const SNAPSHOT_ID = /^snap-[0-9a-f]+$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:.*:[0-9]{12}:key\/.*$/;
const TOKEN = /^[A-Za-z0-9+/=]+$/;
/** Largest EBS volume: 64 TiB. */
const MAX_VOLUME_GIB = 65536;
const MAX_TAGS = 50;

/** Which operation a request is, from its method and path (undefined: not an EBS direct path). */
export function routeEbs(method: string, url: string): EbsRoute | undefined {
  const u = new URL(url, 'http://x');
  const parts = u.pathname
    .split('/')
    .filter((p) => p !== '')
    .map((p) => decodeURIComponent(p));
  const q = u.searchParams;
  if (parts[0] !== 'snapshots') return undefined;
  if (parts.length === 1 && method === 'POST') return { action: 'StartSnapshot', query: q };
  if (parts.length === 3 && parts[1] === 'completion' && method === 'POST')
    return { action: 'CompleteSnapshot', snapshotId: parts[2]!, query: q };
  if (parts.length === 3 && parts[2] === 'blocks' && method === 'GET')
    return { action: 'ListSnapshotBlocks', snapshotId: parts[1]!, query: q };
  if (parts.length === 3 && parts[2] === 'changedblocks' && method === 'GET')
    return { action: 'ListChangedBlocks', snapshotId: parts[1]!, query: q };
  if (parts.length === 4 && parts[2] === 'blocks' && method === 'PUT')
    return { action: 'PutSnapshotBlock', snapshotId: parts[1]!, blockIndex: parts[3]!, query: q };
  if (parts.length === 4 && parts[2] === 'blocks' && method === 'GET')
    return { action: 'GetSnapshotBlock', snapshotId: parts[1]!, blockIndex: parts[3]!, query: q };
  return undefined;
}

export interface EbsContext {
  readonly store: Store;
  readonly region: string;
  readonly encryptionByDefault: boolean;
  /** The server returns at most this many entries per page, whatever MaxResults asks (AWS may return fewer). */
  readonly pageSizeCap: number | undefined;
  /** Flips a byte of the next GetSnapshotBlock answer (fault injection). */
  readonly corruptThisRead: () => boolean;
  readonly countBlockBytesSent: (n: number) => void;
}

function validation(message: string, reason?: string): ApiError {
  return new ApiError(400, 'ValidationException', message, reason);
}

function notFound(id: string): ApiError {
  return new ApiError(
    404,
    'ResourceNotFoundException',
    `The snapshot '${id}' does not exist.`,
    'SNAPSHOT_NOT_FOUND',
  );
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

function intParam(
  value: string | undefined | null,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!/^\d+$/.test(value))
    throw validation(`The value supplied for ${name} is not valid: ${value}.`, 'INVALID_PARAMETER_VALUE');
  const n = Number(value);
  if (n < min || n > max)
    throw validation(
      `The value supplied for ${name} must be between ${min} and ${max}.`,
      'INVALID_PARAMETER_VALUE',
    );
  return n;
}

function snapshotOf(ctx: EbsContext, id: string | undefined): Snapshot {
  if (id === undefined || !SNAPSHOT_ID.test(id))
    throw validation(`The snapshot ID '${id}' is not valid.`, 'INVALID_SNAPSHOT_ID');
  const s = ctx.store.visible(id);
  if (!s) throw notFound(id);
  return s;
}

function blockIndexOf(s: Snapshot, raw: string | undefined): number {
  if (raw === undefined || !/^\d+$/.test(raw))
    throw validation(`The block index '${raw}' is not valid.`, 'INVALID_BLOCK');
  const index = Number(raw);
  const limit = s.volumeSize * BLOCKS_PER_GIB;
  if (index >= limit)
    throw validation(
      `The block index ${index} is beyond the end of the ${s.volumeSize} GiB volume (last index ${limit - 1}).`,
      'INVALID_BLOCK',
    );
  return index;
}

function epochSeconds(d: Date | number): number {
  return (typeof d === 'number' ? d : d.getTime()) / 1000;
}

function readable(s: Snapshot): void {
  if (s.status !== 'completed')
    throw validation(
      `The snapshot '${s.id}' is ${s.status}; only completed snapshots can be read.`,
      'INVALID_SNAPSHOT_ID',
    );
}

function defaultKmsKey(ctx: EbsContext): string {
  return `arn:aws:kms:${ctx.region}:${ctx.store.ownerId}:key/00000000-0000-4000-8000-00000000ebs0`;
}

function parseTags(raw: unknown): Tag[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw validation('Tags must be a list.', 'INVALID_TAG');
  if (raw.length > MAX_TAGS) throw validation(`At most ${MAX_TAGS} tags are allowed.`, 'INVALID_TAG');
  const keys = new Set<string>();
  return raw.map((t: unknown) => {
    const tag = t as { Key?: unknown; Value?: unknown };
    if (typeof tag.Key !== 'string' || tag.Key.length === 0 || tag.Key.length > 127)
      throw validation('Each tag needs a Key of 1 to 127 characters.', 'INVALID_TAG');
    if (tag.Key.toLowerCase().startsWith('aws:'))
      throw validation(`Tag keys may not start with 'aws:'.`, 'INVALID_TAG');
    const value = tag.Value ?? '';
    if (typeof value !== 'string' || value.length > 255)
      throw validation('Tag values are at most 255 characters.', 'INVALID_TAG');
    if (keys.has(tag.Key)) throw validation(`Duplicate tag key '${tag.Key}'.`, 'INVALID_TAG');
    keys.add(tag.Key);
    return { Key: tag.Key, Value: value };
  });
}

function startResponse(s: Snapshot): Record<string, unknown> {
  return {
    SnapshotId: s.id,
    OwnerId: s.ownerId,
    Status: s.status,
    StartTime: epochSeconds(s.startTime),
    VolumeSize: s.volumeSize,
    BlockSize: BLOCK_SIZE,
    ...(s.description !== undefined ? { Description: s.description } : {}),
    ...(s.tags.length ? { Tags: s.tags } : {}),
    ...(s.parentId !== undefined ? { ParentSnapshotId: s.parentId } : {}),
    ...(s.kmsKeyArn !== undefined ? { KmsKeyArn: s.kmsKeyArn } : {}),
  };
}

function startSnapshot(ctx: EbsContext, body: Buffer, res: http.ServerResponse): void {
  let input: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    input = parsed as Record<string, unknown>;
  } catch {
    throw new ApiError(400, 'SerializationException', 'The request body is not a JSON object.');
  }
  const { store } = ctx;
  const volumeSize = input.VolumeSize;
  if (
    typeof volumeSize !== 'number' ||
    !Number.isInteger(volumeSize) ||
    volumeSize < 1 ||
    volumeSize > MAX_VOLUME_GIB
  )
    throw validation(
      `VolumeSize must be a whole number of GiB from 1 to ${MAX_VOLUME_GIB}.`,
      'INVALID_VOLUME_SIZE',
    );
  const description = input.Description;
  if (description !== undefined && (typeof description !== 'string' || description.length > 255))
    throw validation('Description is at most 255 characters.', 'INVALID_PARAMETER_VALUE');
  const clientToken = input.ClientToken;
  if (
    clientToken !== undefined &&
    (typeof clientToken !== 'string' || clientToken.length > 255 || !/^\S+$/.test(clientToken))
  )
    throw validation('ClientToken is 1 to 255 non-blank characters.', 'INVALID_PARAMETER_VALUE');
  const timeout = input.Timeout ?? 60;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 10 || timeout > 4320)
    throw validation('Timeout must be from 10 to 4320 minutes.', 'INVALID_PARAMETER_VALUE');
  const encryptedIn = input.Encrypted;
  if (encryptedIn !== undefined && typeof encryptedIn !== 'boolean')
    throw validation('Encrypted must be a boolean.', 'INVALID_PARAMETER_VALUE');
  const kmsIn = input.KmsKeyArn;
  if (kmsIn !== undefined && (typeof kmsIn !== 'string' || !KMS_ARN.test(kmsIn) || kmsIn.length > 2048))
    throw validation('KmsKeyArn is not a valid KMS key ARN.', 'INVALID_CUSTOMER_KEY');
  const tags = parseTags(input.Tags);

  // ClientToken: the same request again returns the same snapshot; a different one is a conflict.
  const fingerprint = JSON.stringify({ ...input, ClientToken: undefined });
  if (typeof clientToken === 'string') {
    for (const s of store.snapshots.values()) {
      if (s.clientToken !== clientToken) continue;
      if (s.requestFingerprint !== fingerprint)
        throw new ApiError(
          409,
          'ConflictException',
          'The ClientToken was already used with a different request.',
        );
      store.refresh(s);
      return sendJson(res, 201, startResponse(s));
    }
  }

  let parent: Snapshot | undefined;
  const parentId = input.ParentSnapshotId;
  if (parentId !== undefined) {
    if (typeof parentId !== 'string' || !SNAPSHOT_ID.test(parentId))
      throw validation(
        `The parent snapshot ID '${JSON.stringify(parentId)}' is not valid.`,
        'INVALID_SNAPSHOT_ID',
      );
    parent = store.visible(parentId);
    if (!parent) throw notFound(parentId);
    if (parent.status !== 'completed')
      throw validation(
        `The parent snapshot '${parentId}' is ${parent.status}, not completed.`,
        'INVALID_SNAPSHOT_ID',
      );
    if (volumeSize < parent.volumeSize)
      throw validation(
        `VolumeSize ${volumeSize} GiB is smaller than the parent snapshot's ${parent.volumeSize} GiB.`,
        'INVALID_VOLUME_SIZE',
      );
  }

  // Encryption outcomes (EBS user guide, "Encryption outcomes for EBS direct APIs").
  let encrypted: boolean;
  let kmsKeyArn: string | undefined;
  if (parent && !parent.encrypted) {
    if (ctx.encryptionByDefault)
      throw validation(
        'Encryption by default is enabled: an unencrypted parent snapshot cannot be used.',
        'INVALID_PARAMETER_VALUE',
      );
    if (encryptedIn === true || kmsIn !== undefined)
      throw validation(
        'A snapshot whose parent is unencrypted cannot be encrypted.',
        'INVALID_PARAMETER_VALUE',
      );
    encrypted = false;
  } else if (parent) {
    if (encryptedIn === false)
      throw validation('A snapshot whose parent is encrypted must be encrypted.', 'INVALID_PARAMETER_VALUE');
    if (kmsIn !== undefined && encryptedIn !== true)
      throw validation('KmsKeyArn requires Encrypted to be true.', 'INVALID_PARAMETER_VALUE');
    encrypted = true;
    kmsKeyArn = kmsIn ?? parent.kmsKeyArn;
  } else {
    if (kmsIn !== undefined && encryptedIn !== true)
      throw validation('KmsKeyArn requires Encrypted to be true.', 'INVALID_PARAMETER_VALUE');
    if (encryptedIn === false && ctx.encryptionByDefault)
      throw validation(
        'Encryption by default is enabled: unencrypted snapshots cannot be created.',
        'INVALID_PARAMETER_VALUE',
      );
    encrypted = encryptedIn === true || ctx.encryptionByDefault;
    kmsKeyArn = encrypted ? (kmsIn ?? defaultKmsKey(ctx)) : undefined;
  }

  const now = Date.now();
  const s: Snapshot = {
    id: store.newSnapshotId(),
    ownerId: store.ownerId,
    volumeSize,
    parentId: parent?.id,
    encrypted,
    kmsKeyArn,
    description: description,
    tags,
    clientToken: clientToken,
    requestFingerprint: fingerprint,
    startTime: new Date(now),
    visibleAt: now + store.timing.notFoundWindowMs,
    timeoutAt: now + timeout * store.timing.minuteMs,
    status: 'pending',
    statusMessage: undefined,
    progress: 0,
    blocks: new Map(),
    completion: undefined,
  };
  store.snapshots.set(s.id, s);
  sendJson(res, 201, startResponse(s));
}

function putSnapshotBlock(
  ctx: EbsContext,
  route: EbsRoute,
  req: http.IncomingMessage,
  body: Buffer,
  res: http.ServerResponse,
): void {
  const s = snapshotOf(ctx, route.snapshotId);
  const index = blockIndexOf(s, route.blockIndex);
  if (s.status !== 'pending')
    throw validation(
      `The snapshot '${s.id}' is ${s.status}; blocks can only be written while it is pending.`,
      'INVALID_SNAPSHOT_ID',
    );
  const dataLength = header(req, 'x-amz-Data-Length');
  if (dataLength === undefined)
    throw validation('The x-amz-Data-Length header is required.', 'INVALID_PARAMETER_VALUE');
  if (dataLength !== String(BLOCK_SIZE))
    throw validation(`DataLength must be ${BLOCK_SIZE} bytes, not ${dataLength}.`, 'INVALID_PARAMETER_VALUE');
  const algorithm = header(req, 'x-amz-Checksum-Algorithm');
  if (algorithm !== 'SHA256')
    throw validation(`ChecksumAlgorithm must be SHA256, not ${algorithm}.`, 'INVALID_PARAMETER_VALUE');
  const checksum = header(req, 'x-amz-Checksum');
  if (checksum === undefined || checksum.length > 64 || !TOKEN.test(checksum))
    throw validation(
      'The x-amz-Checksum header (base64 SHA-256 of the data) is required.',
      'INVALID_PARAMETER_VALUE',
    );
  const progress = intParam(header(req, 'x-amz-Progress'), 'Progress', 0, 100);
  const encoding = header(req, 'content-encoding');
  if (encoding !== undefined && encoding !== 'identity')
    throw validation(`Content-Encoding '${encoding}' is not supported.`, 'INVALID_CONTENT_ENCODING');
  // A body shorter or longer than DataLength is the one validation error AWS lists as retryable.
  if (body.length !== BLOCK_SIZE) throw validation('Failed to read block data');
  const digest = crypto.createHash('sha256').update(body).digest();
  if (digest.toString('base64') !== checksum)
    throw validation('The checksum provided does not match the checksum computed for the block data.');
  s.blocks.set(index, { data: Buffer.from(body), digest });
  if (progress !== undefined) s.progress = progress;
  res.writeHead(201, {
    'x-amz-checksum': digest.toString('base64'),
    'x-amz-checksum-algorithm': 'SHA256',
    'x-amzn-requestid': crypto.randomUUID(),
    'content-length': 0,
  });
  res.end();
}

function completeSnapshot(
  ctx: EbsContext,
  route: EbsRoute,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const s = snapshotOf(ctx, route.snapshotId);
  const count = intParam(header(req, 'x-amz-ChangedBlocksCount'), 'ChangedBlocksCount', 0);
  if (count === undefined)
    throw validation('The x-amz-ChangedBlocksCount header is required.', 'INVALID_PARAMETER_VALUE');
  const checksum = header(req, 'x-amz-Checksum');
  const algorithm = header(req, 'x-amz-Checksum-Algorithm');
  const method = header(req, 'x-amz-Checksum-Aggregation-Method');
  if (checksum !== undefined) {
    if (checksum.length > 64 || !TOKEN.test(checksum))
      throw validation('The x-amz-Checksum header is not valid.', 'INVALID_PARAMETER_VALUE');
    if (algorithm !== 'SHA256')
      throw validation('ChecksumAlgorithm must be SHA256.', 'INVALID_PARAMETER_VALUE');
    if (method !== 'LINEAR')
      throw validation('ChecksumAggregationMethod must be LINEAR.', 'INVALID_PARAMETER_VALUE');
  }
  if (s.status !== 'pending' || s.completion)
    throw validation(
      `The snapshot '${s.id}' is ${s.completion ? 'already being completed' : s.status}.`,
      'INVALID_SNAPSHOT_ID',
    );
  // Completion is accepted, and the snapshot turns to error when what the client claims does not
  // match what it wrote (it cannot be written any more either way).
  let message: string | undefined;
  if (count !== s.blocks.size)
    message = `ChangedBlocksCount ${count} does not match the ${s.blocks.size} blocks written to the snapshot.`;
  else if (checksum !== undefined && checksum !== linearChecksum(s.blocks))
    message = 'The aggregate checksum does not match the checksum computed from the blocks written.';
  s.completion = {
    at: Date.now() + ctx.store.timing.completionDelayMs,
    outcome: message === undefined ? 'completed' : 'error',
    ...(message !== undefined ? { message } : {}),
  };
  ctx.store.refresh(s);
  sendJson(res, 202, { Status: s.status });
}

function pageBounds(
  ctx: EbsContext,
  route: EbsRoute,
  kind: string,
  snapshotId: string,
): { start: number; size: number } {
  const max = intParam(route.query.get('maxResults'), 'MaxResults', 100, 10000) ?? 10000;
  const size = Math.min(max, ctx.pageSizeCap ?? max);
  const token = route.query.get('pageToken');
  if (token !== null) {
    const next =
      token.length <= 256 && TOKEN.test(token)
        ? ctx.store.parsePageToken(token, kind, snapshotId)
        : undefined;
    if (next === undefined) throw validation('The pagination token is not valid.', 'INVALID_PAGE_TOKEN');
    return { start: next, size };
  }
  return { start: intParam(route.query.get('startingBlockIndex'), 'StartingBlockIndex', 0) ?? 0, size };
}

const TOKEN_LIFETIME_MS = 7 * 24 * 3600 * 1000;

function listSnapshotBlocks(ctx: EbsContext, route: EbsRoute, res: http.ServerResponse): void {
  const s = snapshotOf(ctx, route.snapshotId);
  readable(s);
  const { start, size } = pageBounds(ctx, route, 'list', s.id);
  const indices = ctx.store.blockIndices(s).filter((i) => i >= start);
  const page = indices.slice(0, size);
  const more = indices.length > size;
  sendJson(res, 200, {
    Blocks: page.map((i) => ({
      BlockIndex: i,
      BlockToken: ctx.store.blockToken(ctx.store.blockSource(s, i)!.snapshot, i),
    })),
    ExpiryTime: epochSeconds(Date.now() + TOKEN_LIFETIME_MS),
    VolumeSize: s.volumeSize,
    BlockSize: BLOCK_SIZE,
    ...(more ? { NextToken: ctx.store.pageToken('list', s.id, indices[size]!) } : {}),
  });
}

function getSnapshotBlock(ctx: EbsContext, route: EbsRoute, res: http.ServerResponse): void {
  const s = snapshotOf(ctx, route.snapshotId);
  const index = blockIndexOf(s, route.blockIndex);
  readable(s);
  const token = route.query.get('blockToken');
  if (token === null) throw validation('The blockToken parameter is required.', 'INVALID_BLOCK_TOKEN');
  const owner =
    token.length <= 256 && TOKEN.test(token) ? ctx.store.parseBlockToken(token, index) : undefined;
  const found = ctx.store.blockSource(s, index);
  if (owner === undefined || !found || found.snapshot.id !== owner)
    throw validation(`The block token is not valid for block ${index} of '${s.id}'.`, 'INVALID_BLOCK_TOKEN');
  let data = found.block.data;
  if (ctx.corruptThisRead()) {
    data = Buffer.from(data);
    data[data.length >> 1] = data[data.length >> 1]! ^ 0xff;
  }
  ctx.countBlockBytesSent(data.length);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': data.length,
    'x-amz-data-length': String(data.length),
    'x-amz-checksum': found.block.digest.toString('base64'),
    'x-amz-checksum-algorithm': 'SHA256',
    'x-amzn-requestid': crypto.randomUUID(),
  });
  res.end(data);
}

function listChangedBlocks(ctx: EbsContext, route: EbsRoute, res: http.ServerResponse): void {
  const second = snapshotOf(ctx, route.snapshotId);
  readable(second);
  const firstId = route.query.get('firstSnapshotId');
  const first = firstId === null ? undefined : snapshotOf(ctx, firstId);
  if (first) {
    readable(first);
    const a = ctx.store.lineage(first);
    if (![...ctx.store.lineage(second)].some((id) => a.has(id)))
      throw validation(
        `The snapshots '${first.id}' and '${second.id}' are not related.`,
        'UNRELATED_SNAPSHOTS',
      );
  }
  const { start, size } = pageBounds(ctx, route, 'changed', `${first?.id ?? ''}>${second.id}`);
  const candidates = new Set(ctx.store.blockIndices(second));
  if (first) for (const i of ctx.store.blockIndices(first)) candidates.add(i);
  const changed = [...candidates]
    .sort((x, y) => x - y)
    .filter((i) => i >= start)
    .filter((i) => {
      if (!first) return true;
      const a = ctx.store.blockSource(first, i);
      const b = ctx.store.blockSource(second, i);
      return a?.snapshot.id !== b?.snapshot.id;
    });
  const page = changed.slice(0, size);
  sendJson(res, 200, {
    ChangedBlocks: page.map((i) => {
      const a = first ? ctx.store.blockSource(first, i) : undefined;
      const b = ctx.store.blockSource(second, i);
      return {
        BlockIndex: i,
        ...(a ? { FirstBlockToken: ctx.store.blockToken(a.snapshot, i) } : {}),
        ...(b ? { SecondBlockToken: ctx.store.blockToken(b.snapshot, i) } : {}),
      };
    }),
    ExpiryTime: epochSeconds(Date.now() + TOKEN_LIFETIME_MS),
    VolumeSize: second.volumeSize,
    BlockSize: BLOCK_SIZE,
    ...(changed.length > size
      ? { NextToken: ctx.store.pageToken('changed', `${first?.id ?? ''}>${second.id}`, changed[size]!) }
      : {}),
  });
}

export function handleEbs(
  ctx: EbsContext,
  route: EbsRoute,
  req: http.IncomingMessage,
  body: Buffer,
  res: http.ServerResponse,
): void {
  switch (route.action) {
    case 'StartSnapshot':
      return startSnapshot(ctx, body, res);
    case 'PutSnapshotBlock':
      return putSnapshotBlock(ctx, route, req, body, res);
    case 'CompleteSnapshot':
      return completeSnapshot(ctx, route, req, res);
    case 'ListSnapshotBlocks':
      return listSnapshotBlocks(ctx, route, res);
    case 'GetSnapshotBlock':
      return getSnapshotBlock(ctx, route, res);
    case 'ListChangedBlocks':
      return listChangedBlocks(ctx, route, res);
  }
}
