// Writes 512 KiB blocks into one pending EBS snapshot: StartSnapshot (or the journal's snapshot on
// --resume), PutSnapshotBlock with each block's SHA-256 in parallel under a bounded in-flight
// count (memory = in-flight × 512 KiB), and CompleteSnapshot with the LINEAR aggregate checksum
// (SHA-256 over the written blocks' SHA-256s in block order) and the count of blocks written.
//
// Which blocks are sent: an all-zero block is skipped only where the snapshot reads zero without
// it, i.e. the snapshot is unencrypted (unwritten blocks of an encrypted snapshot do not read as
// zero) and the parent has no data there. With a parent, a block the parent holds is compared by
// its SHA-256 (GetSnapshotBlock's checksum header; the body is not read) and sent only if it
// differs, zero blocks included.
import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  CompleteSnapshotCommand,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
  type Tag,
} from '@aws-sdk/client-ebs';
import type { Reporter } from '../events.js';
import { BundleError } from '../errors.js';
import { loadEc2Sdk, type EbsClients } from './clients.js';
import { BLOCK_SIZE, type EbsConnectionConfig } from './connection.js';
import type { Journal } from './journal.js';
import { withEbsRetry, type EbsRetryHooks, type EbsTarget } from './retry.js';

export interface SnapshotRequest {
  /** Size of the volume the snapshot describes, GiB. */
  readonly volumeGiB: number;
  readonly description?: string;
  readonly tags?: readonly Tag[];
  readonly encrypted?: boolean;
  readonly kmsKeyArn?: string;
  readonly parentSnapshotId?: string;
}

/** What the writer did, for the summary line, the `done` event and the tests. */
export interface WriteStats {
  /** PutSnapshotBlock calls that succeeded in this run. */
  blocksSent: number;
  /** Blocks acknowledged in an earlier, interrupted run (from the journal). */
  blocksResumed: number;
  /** All-zero blocks not sent because the snapshot reads zero there anyway. */
  zeroBlocksSkipped: number;
  /** Blocks equal to the parent's, not sent. */
  parentBlocksKept: number;
}

const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);
const ZERO_CHECKSUM = sha256(ZERO_BLOCK);

function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('base64');
}

/** The LINEAR aggregate: SHA-256 of the concatenated binary block checksums, in block order. */
export function linearChecksum(blocks: ReadonlyMap<number, string>): string {
  const hash = crypto.createHash('sha256');
  for (const index of [...blocks.keys()].sort((a, b) => a - b))
    hash.update(Buffer.from(blocks.get(index)!, 'base64'));
  return hash.digest('base64');
}

/**
 * The block's SHA-256 is also the SigV4 payload hash: sent as x-amz-content-sha256, it spares
 * the signer hashing every 512 KiB body a second time (CPU on the path of every request).
 */
function withPayloadHash(command: PutSnapshotBlockCommand, checksum: string): PutSnapshotBlockCommand {
  const hex = Buffer.from(checksum, 'base64').toString('hex');
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = hex;
      return next(args);
    },
    { step: 'build', name: 'amibundlePayloadHash' },
  );
  return command;
}

/** Blocks read and hashed ahead of a free slot (memory: concurrency + this + 1 blocks). */
const READY_AHEAD = 2;

interface ReadyBlock {
  readonly index: number;
  readonly data: Buffer;
  readonly zero: boolean;
  readonly checksum: string;
  readonly release: (data: Buffer) => void;
}

interface ParentInfo {
  readonly id: string;
  readonly encrypted: boolean;
  readonly volumeGiB: number;
  /** Block index -> block token, for every block the parent holds. */
  readonly blocks: Map<number, string>;
}

export class SnapshotWriter {
  readonly stats: WriteStats = { blocksSent: 0, blocksResumed: 0, zeroBlocksSkipped: 0, parentBlocksKept: 0 };
  snapshotId: string | undefined;
  /** Whether unwritten blocks of the new snapshot might not read as zero. */
  private encrypted = false;
  private parent: ParentInfo | undefined;
  /** Block index -> checksum of every block the snapshot holds from this upload (sent or resumed). */
  private readonly written = new Map<number, string>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Blocks hashed and waiting for a slot, in block order (at most READY_AHEAD + 1). */
  private readonly ready: ReadyBlock[] = [];
  private failure: Error | undefined;
  private nextIndex = 0;

  constructor(
    private readonly clients: EbsClients,
    private readonly conn: EbsConnectionConfig,
    private readonly request: SnapshotRequest,
    private readonly journal: Journal,
    private readonly out: Reporter,
    private readonly signal?: AbortSignal,
    /** Called with each snapshot id as soon as it exists. */
    private readonly onSnapshot: (id: string) => void = () => undefined,
  ) {
    // Every request in flight (and every back-off sleep) listens on the run's abort signal.
    if (signal) setMaxListeners(conn.concurrency * 3 + 16, signal);
  }

  /** The first block index not yet handed over. */
  get nextBlock(): number {
    return this.nextIndex;
  }

  get volumeBlocks(): number {
    return (this.request.volumeGiB * 2 ** 30) / BLOCK_SIZE;
  }

  private retry<T>(target: EbsTarget, op: () => Promise<T>, extra: Partial<EbsRetryHooks> = {}): Promise<T> {
    return withEbsRetry(this.conn.retry, target, op, {
      ...(this.signal ? { signal: this.signal } : {}),
      onRetry: (err, failure, attempt, delay) =>
        this.out.debug(
          `${target.op}${target.block !== undefined ? ` block ${target.block}` : ''}: attempt ${attempt} failed (${failure}: ${(err as Error).name ?? ''} ${(err as Error).message ?? ''}); retrying in ${delay} ms`,
        ),
      ...extra,
    });
  }

  /** Starts the snapshot, or takes up the journal's pending one. */
  async start(): Promise<string> {
    if (this.request.parentSnapshotId !== undefined)
      this.parent = await this.loadParent(this.request.parentSnapshotId);
    const state = this.journal.state;
    if (state.snapshotId !== undefined) {
      // --resume: the snapshot must still be pending to take more blocks.
      const snap = await this.describe(state.snapshotId, false);
      if (snap?.State !== 'pending')
        throw new BundleError(
          `snapshot ${state.snapshotId} of the resume journal is ${snap?.State ?? 'gone'}, not pending: it cannot take more blocks`,
          `remove ${this.journal.file} to start a new snapshot`,
        );
      this.snapshotId = state.snapshotId;
      this.encrypted =
        snap.Encrypted === true || this.request.encrypted === true || this.parent?.encrypted === true;
      for (const [index, checksum] of Object.entries(state.blocks)) this.written.set(Number(index), checksum);
      this.onSnapshot(state.snapshotId);
      return state.snapshotId;
    }
    const r = this.request;
    const started = await this.retry({ op: 'StartSnapshot' }, () =>
      this.clients.ebs.send(
        new StartSnapshotCommand({
          VolumeSize: r.volumeGiB,
          ClientToken: state.clientToken,
          ...(r.description !== undefined ? { Description: r.description } : {}),
          ...(r.tags && r.tags.length > 0 ? { Tags: [...r.tags] } : {}),
          ...(r.encrypted ? { Encrypted: true } : {}),
          ...(r.kmsKeyArn !== undefined ? { KmsKeyArn: r.kmsKeyArn } : {}),
          ...(r.parentSnapshotId !== undefined ? { ParentSnapshotId: r.parentSnapshotId } : {}),
        }),
        { abortSignal: this.signal },
      ),
    );
    if (!started.SnapshotId) throw new BundleError('StartSnapshot answered without a snapshot id');
    if (started.BlockSize !== undefined && started.BlockSize !== BLOCK_SIZE)
      throw new BundleError(`StartSnapshot answered a block size of ${started.BlockSize}, not ${BLOCK_SIZE}`);
    this.snapshotId = started.SnapshotId;
    // Encryption by default encrypts a snapshot nobody asked to encrypt: the answer decides.
    this.encrypted =
      r.encrypted === true ||
      started.KmsKeyArn !== undefined ||
      (started.SseType !== undefined && started.SseType !== 'none') ||
      this.parent?.encrypted === true;
    state.snapshotId = started.SnapshotId;
    await this.journal.save();
    this.onSnapshot(started.SnapshotId);
    return started.SnapshotId;
  }

  private async describe(id: string, notFoundMayClear: boolean) {
    const { DescribeSnapshotsCommand } = await loadEc2Sdk();
    const res = await this.retry(
      { op: 'DescribeSnapshots', snapshotId: id },
      () =>
        this.clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }), {
          abortSignal: this.signal,
        }),
      { notFoundMayClear },
    );
    return res.Snapshots?.[0];
  }

  private async loadParent(id: string): Promise<ParentInfo> {
    const snap = await this.describe(id, false);
    if (!snap)
      throw new BundleError(`parent snapshot ${id} does not exist`, 'check --parent-snapshot and --region');
    if (snap.State !== 'completed')
      throw new BundleError(
        `parent snapshot ${id} is ${snap.State ?? 'in an unknown state'}, not completed`,
        'wait until it is completed',
      );
    const volumeGiB = snap.VolumeSize ?? 0;
    if (volumeGiB > this.request.volumeGiB)
      throw new BundleError(
        `parent snapshot ${id} is of a ${volumeGiB} GiB volume, larger than the ${this.request.volumeGiB} GiB asked for`,
        `give --size ${volumeGiB} or more`,
      );
    const blocks = new Map<number, string>();
    let nextToken: string | undefined;
    do {
      const page = await this.retry({ op: 'ListSnapshotBlocks', snapshotId: id }, () =>
        this.clients.ebs.send(
          new ListSnapshotBlocksCommand({
            SnapshotId: id,
            MaxResults: 10_000,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
          { abortSignal: this.signal },
        ),
      );
      for (const b of page.Blocks ?? [])
        if (b.BlockIndex !== undefined && b.BlockToken !== undefined) blocks.set(b.BlockIndex, b.BlockToken);
      nextToken = page.NextToken;
    } while (nextToken);
    this.out.debug(`parent snapshot ${id}: ${blocks.size} blocks hold data`);
    return { id, encrypted: snap.Encrypted === true, volumeGiB, blocks };
  }

  /** The parent's checksum of one of its blocks, from the response headers (the body is dropped). */
  private async parentChecksum(parent: ParentInfo, index: number): Promise<string | undefined> {
    const res = await this.retry({ op: 'GetSnapshotBlock', snapshotId: parent.id, block: index }, () =>
      this.clients.ebs.send(
        new GetSnapshotBlockCommand({
          SnapshotId: parent.id,
          BlockIndex: index,
          BlockToken: parent.blocks.get(index)!,
        }),
        { abortSignal: this.signal },
      ),
    );
    const body = res.BlockData as unknown as { destroy?: () => void } | undefined;
    body?.destroy?.();
    return res.ChecksumAlgorithm === 'SHA256' ? res.Checksum : undefined;
  }

  /**
   * Takes the block at `index` (blocks come in ascending order; `data` is exactly 512 KiB and is
   * not touched again by the caller until `release` is called). Resolves once no more than
   * READY_AHEAD blocks wait for a slot, so the caller prepares the next ones while the link is
   * busy (at most concurrency + READY_AHEAD + 1 blocks held).
   */
  async block(
    index: number,
    data: Buffer,
    zero: boolean,
    release: (data: Buffer) => void = () => undefined,
  ): Promise<void> {
    this.throwIfFailed();
    this.signal?.throwIfAborted();
    if (index < this.nextIndex) throw new Error(`block ${index} after block ${this.nextIndex - 1}`);
    if (index >= this.volumeBlocks)
      throw new BundleError(`block ${index} lies beyond the ${this.request.volumeGiB} GiB volume`);
    this.nextIndex = index + 1;
    // Hashed now, while the blocks before it are in flight, and queued: a slot that frees up is
    // refilled in the same tick by a request that is ready to go (see dispatch).
    const checksum = zero ? ZERO_CHECKSUM : sha256(data);
    this.ready.push({ index, data, zero, checksum, release });
    this.dispatch();
    while (this.ready.length > READY_AHEAD && this.failure === undefined) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /**
   * Starts ready blocks while slots are free. Each request that ends calls it again, so the next
   * block goes out the moment a slot frees up, not after the caller has read and hashed it.
   */
  private dispatch(): void {
    if (this.failure !== undefined) {
      for (const b of this.ready.splice(0)) b.release(b.data);
      return;
    }
    while (this.inFlight.size < this.conn.concurrency && this.ready.length > 0) {
      const b = this.ready.shift()!;
      const task: Promise<void> = this.handle(b.index, b.data, b.zero, b.checksum)
        .catch((err: unknown) => {
          this.failure ??= err instanceof Error ? err : new Error(String(err));
        })
        .finally(() => {
          b.release(b.data);
          this.inFlight.delete(task);
          this.dispatch();
        });
      this.inFlight.add(task);
    }
  }

  private async handle(index: number, data: Buffer, zero: boolean, checksum: string): Promise<void> {
    if (this.written.get(index) === checksum) {
      this.stats.blocksResumed++;
      return;
    }
    const parent = this.parent;
    if (parent?.blocks.has(index)) {
      if ((await this.parentChecksum(parent, index)) === checksum) {
        this.stats.parentBlocksKept++;
        return;
      }
    } else if (zero && !this.encrypted) {
      this.stats.zeroBlocksSkipped++;
      return;
    }
    const snapshotId = this.snapshotId!;
    const progress = Math.min(100, Math.floor(((index + 1) * 100) / this.volumeBlocks));
    const res = await this.retry(
      { op: 'PutSnapshotBlock', snapshotId, block: index },
      () =>
        this.clients.ebs.send(
          withPayloadHash(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: index,
              BlockData: zero ? ZERO_BLOCK : data,
              DataLength: BLOCK_SIZE,
              Checksum: checksum,
              ChecksumAlgorithm: 'SHA256',
              Progress: progress,
            }),
            checksum,
          ),
          { abortSignal: this.signal },
        ),
      // Right after StartSnapshot the new snapshot may not be visible yet.
      { notFoundMayClear: true },
    );
    if (res.Checksum !== undefined && res.Checksum !== checksum)
      throw new BundleError(
        `EBS acknowledged block ${index} of ${snapshotId} with checksum ${res.Checksum}, not ${checksum}`,
      );
    this.written.set(index, checksum);
    this.journal.acknowledge(index, checksum);
    this.stats.blocksSent++;
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for every block in flight; throws the first failure. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  /**
   * Blocks [from, to) are all zero (a hole of the image, or the volume past its end): nothing to
   * send for a plain snapshot, zeros where the parent has data, zeros everywhere when encrypted.
   */
  async zeroRange(from: number, to: number): Promise<void> {
    if (from < this.nextIndex) throw new Error(`zero blocks from ${from} after block ${this.nextIndex - 1}`);
    if (this.encrypted) {
      for (let i = from; i < to; i++) await this.block(i, ZERO_BLOCK, true);
      return;
    }
    const parentBlocks = [...(this.parent?.blocks.keys() ?? [])]
      .filter((i) => i >= from && i < to)
      .sort((a, b) => a - b);
    for (const i of parentBlocks) await this.block(i, ZERO_BLOCK, true);
    this.stats.zeroBlocksSkipped += to - from - parentBlocks.length;
    this.nextIndex = Math.max(this.nextIndex, to);
  }

  /** Completes the snapshot: every block sent, the aggregate checksum over them. */
  async complete(): Promise<void> {
    await this.drain();
    await this.journal.flush();
    const snapshotId = this.snapshotId!;
    const res = await this.retry(
      { op: 'CompleteSnapshot', snapshotId },
      () =>
        this.clients.ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: snapshotId,
            ChangedBlocksCount: this.written.size,
            Checksum: linearChecksum(this.written),
            ChecksumAlgorithm: 'SHA256',
            ChecksumAggregationMethod: 'LINEAR',
          }),
          { abortSignal: this.signal },
        ),
      { notFoundMayClear: true },
    );
    if (res.Status === 'error')
      throw new BundleError(`EBS refused to complete snapshot ${snapshotId} (status error)`);
  }

  /** Blocks the new snapshot holds from this upload (sent now or in the interrupted run). */
  get blocksWritten(): number {
    return this.written.size;
  }
}
