// Reads an EBS snapshot back through the EBS direct APIs: DescribeSnapshots until it is
// `completed` (a pending snapshot cannot be read), ListSnapshotBlocks page by page, and
// GetSnapshotBlock in parallel, `concurrency` in flight. Blocks reach the writer in ascending order
// (the image sinks take ascending offsets) through a reorder window of at most 2 × concurrency
// blocks: memory = 2 × in-flight × 512 KiB. Each block's SHA-256 is checked against the x-amz-Checksum AWS
// sends with it; a block that fails the check is fetched again (AWS: "consider the data not
// valid and retry"), under the same bounded retry policy as every other request, in the same one
// loop, never nested. Blocks not listed are holes: they are never written.
import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetSnapshotBlockCommand, ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { AmiError, ExitCode } from '../errors.js';
import { silentReporter, type Reporter } from '../events.js';
import { loadEc2Sdk, type EbsClients } from './clients.js';
import { BLOCK_SIZE, type EbsConnectionConfig } from './connection.js';
import { EbsError, withEbsRetry, type EbsTarget } from './retry.js';

export const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
const GIB = 2 ** 30;
/** ListSnapshotBlocks' largest page. */
const PAGE_SIZE = 10000;

export interface SnapshotFacts {
  readonly id: string;
  readonly volumeGiB: number;
  /** Absent when EBS direct alone said the snapshot is readable (EC2 was not asked). */
  readonly encrypted?: boolean;
  readonly description?: string;
}

/** Where the blocks go, in ascending offsets (an ImageSink fits). `chunk` is not reused after. */
export interface BlockWriter {
  write(offset: number, chunk: Buffer): Promise<void>;
}

export interface ReadOptions {
  readonly clients: EbsClients;
  readonly conn: EbsConnectionConfig;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

export interface ReadStats {
  /** Blocks with data (listed by ListSnapshotBlocks) and written. */
  blocks: number;
  dataBytes: number;
  /** ListSnapshotBlocks pages read. */
  pages: number;
  /** GetSnapshotBlock requests sent, retries included. */
  getRequests: number;
  /** Blocks whose data failed its SHA-256 check and was fetched again. */
  checksumRetries: number;
}

/** A block whose bytes do not match the checksum AWS sent with them. */
export class BlockChecksumError extends AmiError {
  override readonly name = 'BlockChecksumError';
  constructor(
    readonly snapshotId: string,
    readonly block: number,
    detail: string,
    attempts: number,
  ) {
    super(
      `GetSnapshotBlock returned corrupt data for snapshot ${snapshotId}, block ${block}: ${detail}${attempts > 1 ? ` (on all ${attempts} attempts)` : ''}`,
      ExitCode.runtime,
      'the data changed on its way (a proxy, the network, or the service): try again; nothing was written under the final name',
    );
  }
}

function describeTarget(id: string): EbsTarget {
  return { op: 'DescribeSnapshots', snapshotId: id };
}

/**
 * The volume size of a snapshot EBS direct reads, i.e. a `completed` one (EBS direct reads
 * nothing else), from one small ListSnapshotBlocks page; undefined when it does not (pending,
 * unknown, archived, not allowed: DescribeSnapshots then says which). A completed snapshot so
 * needs no EC2 call, and the EC2 SDK is not even loaded.
 */
export async function completedVolumeGiB(opts: ReadOptions, snapshotId: string): Promise<number | undefined> {
  try {
    const page = await withEbsRetry(
      opts.conn.retry,
      { op: 'ListSnapshotBlocks', snapshotId },
      () =>
        opts.clients.ebs.send(new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 100 }), {
          ...(opts.signal ? { abortSignal: opts.signal } : {}),
        }),
      opts.signal ? { signal: opts.signal } : {},
    );
    return page.VolumeSize !== undefined && page.VolumeSize > 0 ? page.VolumeSize : undefined;
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    (opts.out ?? silentReporter).debug(
      `ListSnapshotBlocks of ${snapshotId} failed (${(err as Error).message}): asking DescribeSnapshots`,
    );
    return undefined;
  }
}

/**
 * The snapshot's facts once it is `completed`: straight away when EBS direct reads it, else from
 * DescribeSnapshots. Pending: waits (polling with back-off) when
 * `wait`, else refuses with a line saying so; `error` or an archived snapshot is refused.
 */
export async function waitForCompleted(
  opts: ReadOptions,
  snapshotId: string,
  wait: boolean,
  pollMs = { first: 250, max: 15_000 },
): Promise<SnapshotFacts> {
  const out = opts.out ?? silentReporter;
  const volumeGiB = await completedVolumeGiB(opts, snapshotId);
  if (volumeGiB !== undefined) return { id: snapshotId, volumeGiB };
  let delay = pollMs.first;
  let announced = false;
  const { DescribeSnapshotsCommand } = await loadEc2Sdk();
  for (;;) {
    let snap;
    try {
      const r = await withEbsRetry(
        opts.conn.retry,
        describeTarget(snapshotId),
        () => opts.clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })),
        { ...(opts.signal ? { signal: opts.signal } : {}) },
      );
      snap = r.Snapshots?.find((s) => s.SnapshotId === snapshotId);
    } catch (err) {
      if (err instanceof EbsError && err.code === 'InvalidSnapshot.NotFound') snap = undefined;
      else throw err;
    }
    if (!snap)
      throw new AmiError(
        `snapshot ${snapshotId} does not exist in this region, or these credentials cannot see it`,
        ExitCode.runtime,
        'check the snapshot id and --region (or AWS_REGION)',
      );
    const facts: SnapshotFacts = {
      id: snapshotId,
      volumeGiB: snap.VolumeSize ?? 0,
      encrypted: snap.Encrypted === true,
      ...(snap.Description ? { description: snap.Description } : {}),
    };
    if (snap.StorageTier === 'archive')
      throw new AmiError(
        `snapshot ${snapshotId} is archived: EBS direct cannot read it`,
        ExitCode.runtime,
        'restore it to the standard tier first (aws ec2 restore-snapshot-tier)',
      );
    switch (snap.State) {
      case 'completed':
        if (!(facts.volumeGiB > 0)) throw new AmiError(`snapshot ${snapshotId} reports no volume size`);
        return facts;
      case 'pending':
        if (!wait)
          throw new AmiError(
            `snapshot ${snapshotId} is still pending (${snap.Progress ?? '0%'}): EBS direct reads only completed snapshots`,
            ExitCode.runtime,
            'run again once it is completed, or without --no-wait to wait for it',
          );
        if (!announced)
          out.info(
            `Snapshot ${snapshotId} is pending (${snap.Progress ?? '0%'}); waiting until it is completed...`,
          );
        announced = true;
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
        delay = Math.min(pollMs.max, delay * 2);
        continue;
      default:
        throw new AmiError(
          `snapshot ${snapshotId} is in state ${snap.State ?? 'unknown'}${snap.StateMessage ? ` (${snap.StateMessage})` : ''}: it cannot be read`,
        );
    }
  }
}

interface ListedBlock {
  readonly index: number;
  readonly token: string;
}

/** The snapshot's blocks in ascending order, one ListSnapshotBlocks page at a time. */
async function* listBlocks(
  opts: ReadOptions,
  facts: SnapshotFacts,
  stats: ReadStats,
): AsyncGenerator<ListedBlock> {
  let next: string | undefined;
  let last = -1;
  const limit = (facts.volumeGiB * GIB) / BLOCK_SIZE;
  do {
    const page = await withEbsRetry(
      opts.conn.retry,
      { op: 'ListSnapshotBlocks', snapshotId: facts.id },
      () =>
        opts.clients.ebs.send(
          new ListSnapshotBlocksCommand({
            SnapshotId: facts.id,
            MaxResults: PAGE_SIZE,
            ...(next !== undefined ? { NextToken: next } : {}),
          }),
        ),
      {
        ...(opts.signal ? { signal: opts.signal } : {}),
        // Right after it turned completed, EBS direct may not know the snapshot yet.
        notFoundMayClear: true,
      },
    );
    stats.pages++;
    if (page.VolumeSize !== undefined && page.VolumeSize !== facts.volumeGiB)
      throw new AmiError(
        `snapshot ${facts.id}: ListSnapshotBlocks says ${page.VolumeSize} GiB, DescribeSnapshots ${facts.volumeGiB} GiB`,
      );
    if (page.BlockSize !== undefined && page.BlockSize !== BLOCK_SIZE)
      throw new AmiError(`snapshot ${facts.id}: block size ${page.BlockSize}, expected ${BLOCK_SIZE}`);
    for (const b of page.Blocks ?? []) {
      const index = b.BlockIndex;
      if (index === undefined || b.BlockToken === undefined || index <= last || index >= limit)
        throw new AmiError(
          `snapshot ${facts.id}: ListSnapshotBlocks listed block ${index} out of order or beyond the volume`,
        );
      last = index;
      yield { index, token: b.BlockToken };
    }
    next = page.NextToken;
  } while (next);
}

function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('base64');
}

/** One block, its checksum verified; retried under the policy (corrupt data counts as a server failure). */
async function getBlock(
  opts: ReadOptions,
  snapshotId: string,
  b: ListedBlock,
  stats: ReadStats,
  abort: AbortSignal,
): Promise<Buffer> {
  const out = opts.out ?? silentReporter;
  const target: EbsTarget = { op: 'GetSnapshotBlock', snapshotId, block: b.index };
  return withEbsRetry(
    opts.conn.retry,
    target,
    async (attempt) => {
      stats.getRequests++;
      const r = await opts.clients.ebs.send(
        new GetSnapshotBlockCommand({ SnapshotId: snapshotId, BlockIndex: b.index, BlockToken: b.token }),
        { abortSignal: abort },
      );
      const data = Buffer.from((await r.BlockData?.transformToByteArray()) ?? []);
      let problem: string | undefined;
      if (r.ChecksumAlgorithm !== undefined && r.ChecksumAlgorithm !== 'SHA256')
        problem = `unknown checksum algorithm ${String(r.ChecksumAlgorithm)}`;
      else if (r.Checksum === undefined) problem = 'no x-amz-Checksum came with it';
      else if (data.length !== BLOCK_SIZE || (r.DataLength !== undefined && r.DataLength !== BLOCK_SIZE))
        problem = `${data.length} bytes (DataLength ${r.DataLength}), expected ${BLOCK_SIZE}`;
      else if (sha256(data) !== r.Checksum) problem = `SHA-256 ${sha256(data)}, x-amz-Checksum ${r.Checksum}`;
      if (problem === undefined) return data;
      throw new BlockChecksumError(snapshotId, b.index, problem, attempt);
    },
    {
      signal: abort,
      classifyAs: (err) => (err instanceof BlockChecksumError ? 'server' : undefined),
      onRetry: (err, failure, attempt, delay) => {
        if (err instanceof BlockChecksumError) stats.checksumRetries++;
        out.debug(
          `GetSnapshotBlock block ${b.index}: attempt ${attempt} failed (${failure}: ${(err as Error).message}); retrying in ${delay} ms`,
        );
      },
    },
  );
}

interface Pending {
  readonly index: number;
  readonly data: Promise<Buffer>;
  done: boolean;
}

/**
 * Blocks requested in ascending order and written in that order as they arrive. Writing runs
 * beside the requests, not between them: a slot that frees up while a block is being written is
 * refilled at once, instead of after the write (and the writes queued behind it).
 */
class ReorderWindow {
  private readonly held: Pending[] = [];
  private writing: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  failure: { error: unknown } | undefined;
  inFlight = 0;

  constructor(private readonly write: (index: number, data: Buffer) => Promise<void>) {}

  get size(): number {
    return this.held.length;
  }

  /** Requests still held or a write under way. */
  get busy(): boolean {
    return this.held.length > 0 || this.writing !== undefined;
  }

  /** Resolves at the next arrival, write or failure. */
  nextChange(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  add(index: number, data: Promise<Buffer>): void {
    const entry: Pending = { index, data, done: false };
    this.inFlight++;
    // A failure is seen (thrown) where the write awaits the data.
    void data
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        entry.done = true;
        this.inFlight--;
        this.changed();
        this.pump();
      });
    this.held.push(entry);
  }

  /** After a failure: every request settled and no write under way, so nothing writes after it. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.held.map((w) => w.data));
    await this.writing;
  }

  private changed(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Writes the blocks at the head that have arrived, one at a time, in order. */
  private pump(): void {
    if (this.writing || this.failure || !this.held[0]?.done) return;
    const head = this.held.shift()!;
    this.writing = head.data
      .then((data) => this.write(head.index, data))
      .then(
        () => {
          this.writing = undefined;
          this.changed();
          this.pump();
        },
        (error: unknown) => {
          this.failure ??= { error };
          this.writing = undefined;
          this.changed();
        },
      );
  }
}

/**
 * Reads every listed block of a completed snapshot into `into`, in ascending offsets. At most
 * `conn.concurrency` requests are in flight, and a slot is refilled as soon as any request ends:
 * blocks that arrive ahead of an earlier, slower one wait in a reorder window of at most
 * `concurrency` more, so one slow block does not idle the other connections (it did when the
 * window was the in-flight count: every request behind a slow head had to wait for it). Memory:
 * at most 2 × concurrency × 512 KiB. On failure, the requests still running are cancelled and
 * awaited before the error is thrown, so nothing writes after it.
 */
export async function readSnapshotBlocks(
  opts: ReadOptions,
  facts: SnapshotFacts,
  into: BlockWriter,
): Promise<ReadStats> {
  const out = opts.out ?? silentReporter;
  const stats: ReadStats = { blocks: 0, dataBytes: 0, pages: 0, getRequests: 0, checksumRetries: 0 };
  const stop = new AbortController();
  const abort = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const concurrency = Math.max(1, opts.conn.concurrency);
  // Every request in flight (and every back-off sleep) listens on it: no leak warning past 10.
  setMaxListeners(concurrency * 3 + 16, abort);
  const total = facts.volumeGiB * GIB;
  const window = new ReorderWindow(async (index, data) => {
    await into.write(index * BLOCK_SIZE, data);
    stats.blocks++;
    stats.dataBytes += data.length;
    out.progress({ phase: 'from-ebs', done: (index + 1) * BLOCK_SIZE, total, unit: 'bytes' });
  });
  try {
    for await (const b of listBlocks(opts, facts, stats)) {
      while (!window.failure && (window.inFlight >= concurrency || window.size >= 2 * concurrency))
        await window.nextChange();
      if (window.failure) throw window.failure.error;
      window.add(b.index, getBlock(opts, facts.id, b, stats, abort));
    }
    while (!window.failure && window.busy) await window.nextChange();
    if (window.failure) throw window.failure.error;
    out.progress({ phase: 'from-ebs', done: total, total, unit: 'bytes' });
    return stats;
  } catch (err) {
    stop.abort(err);
    await window.settle();
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw err;
  } finally {
    out.endProgress();
  }
}
