// to-ebs: an image (raw file or bundle) becomes a completed EBS snapshot, and optionally an AMI.
// The journal is written before StartSnapshot (its idempotency token) and after each batch of
// acknowledged blocks; the snapshot id is reported the moment it exists and again on failure,
// so no pending snapshot is ever left without its id. The upload completes only after the
// source's own checks (a bundle's digest) passed; then the snapshot is waited for until
// `completed`, and registered.
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Tag } from '@aws-sdk/client-ebs';
import type { Reporter } from '../events.js';
import { BundleError, UsageError } from '../errors.js';
import { inspectBootMode, type BootMode } from './boot-mode.js';
import { checkEbsSetup, createEbsClients, loadEc2Sdk, type EbsClients } from './clients.js';
import type { EbsConnectionConfig } from './connection.js';
import type { ImageSource } from './image-source.js';
import { Journal, readJournal, type JournalState } from './journal.js';
import { completedVolumeGiB } from './read-snapshot.js';
import { registerImage, type RegisterRequest } from './register.js';
import { withEbsRetry } from './retry.js';
import { SnapshotSink } from './snapshot-sink.js';
import { SnapshotWriter, type WriteStats } from './snapshot-writer.js';

const GiB = 2 ** 30;

export interface RegisterPlan extends Omit<RegisterRequest, 'snapshotId' | 'architecture' | 'bootMode'> {
  /** Absent = from the image (and the manifest's architecture, else x86_64). */
  readonly architecture?: string;
  readonly bootMode?: BootMode;
  /** Register even when the image looks unbootable under HVM. */
  readonly force: boolean;
}

export interface ToEbsOptions {
  readonly conn: EbsConnectionConfig;
  readonly source: ImageSource;
  /** The source as the user named it (journal, messages). */
  readonly sourceName: string;
  readonly journalFile: string;
  readonly resume: boolean;
  /** Volume size in GiB; absent = the image rounded up. */
  readonly sizeGiB?: number;
  readonly description?: string;
  readonly tags?: readonly Tag[];
  readonly encrypted?: boolean;
  readonly kmsKeyArn?: string;
  readonly parentSnapshotId?: string;
  readonly register?: RegisterPlan;
  /** Poll interval while waiting for `completed`. */
  readonly pollMs?: number;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

export interface ToEbsResult {
  readonly snapshotId: string;
  readonly imageId?: string;
  readonly volumeGiB: number;
  readonly bootMode?: BootMode;
  readonly stats: WriteStats;
  readonly blocksWritten: number;
  readonly seconds: number;
}

export function volumeSizeGiB(imageSize: number, sizeGiB: number | undefined): number {
  const needed = Math.max(1, Math.ceil(imageSize / GiB));
  if (sizeGiB === undefined) return needed;
  if (sizeGiB < needed)
    throw new UsageError(
      `--size has invalid value '${sizeGiB}': the image needs ${needed} GiB (${imageSize} bytes)`,
    );
  return sizeGiB;
}

/** The options that decide the snapshot's content; a resume with other ones is refused. */
function shapeOf(o: ToEbsOptions, volumeGiB: number): string {
  return JSON.stringify({
    volumeGiB,
    encrypted: o.encrypted === true,
    kms: o.kmsKeyArn ?? null,
    parent: o.parentSnapshotId ?? null,
  });
}

function openJournal(o: ToEbsOptions, volumeGiB: number): Journal {
  const shape = shapeOf(o, volumeGiB);
  const existing = readJournal(o.journalFile);
  if (existing && !o.resume)
    throw new UsageError(
      `an interrupted upload of ${o.sourceName}${existing.snapshotId ? ` into ${existing.snapshotId}` : ''} left its journal ${o.journalFile}`,
      'give --resume to continue it, or remove the journal to start a new snapshot',
    );
  if (existing) {
    if (existing.sourceId !== o.source.id)
      throw new BundleError(
        `${o.sourceName} changed since the interrupted upload (journal ${o.journalFile}): it cannot be resumed`,
        'remove the journal to start a new snapshot',
      );
    if (existing.shape !== shape)
      throw new UsageError(
        `--resume with other --size/--encrypted/--kms-key/--parent-snapshot than the interrupted upload (${existing.shape})`,
        'give the same flags, or remove the journal to start a new snapshot',
      );
    o.out.info(
      `Resuming ${existing.snapshotId ?? 'the snapshot start'}: ${Object.keys(existing.blocks).length} blocks acknowledged before`,
    );
    return new Journal(o.journalFile, existing);
  }
  const state: JournalState = {
    version: 1,
    source: o.sourceName,
    sourceId: o.source.id,
    clientToken: crypto.randomUUID(),
    shape,
    blocks: {},
  };
  return new Journal(o.journalFile, state);
}

async function waitCompleted(clients: EbsClients, o: ToEbsOptions, snapshotId: string): Promise<void> {
  const pollMs = o.pollMs ?? 2000;
  // Already readable through EBS direct: completed, without loading the EC2 SDK (seconds of CPU).
  if (
    (await completedVolumeGiB(
      { clients, conn: o.conn, out: o.out, ...(o.signal ? { signal: o.signal } : {}) },
      snapshotId,
    )) !== undefined
  )
    return;
  const { DescribeSnapshotsCommand } = await loadEc2Sdk();
  for (;;) {
    const res = await withEbsRetry(
      o.conn.retry,
      { op: 'DescribeSnapshots', snapshotId },
      () =>
        clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), {
          abortSignal: o.signal,
        }),
      { notFoundMayClear: true, ...(o.signal ? { signal: o.signal } : {}) },
    );
    const snap = res.Snapshots?.[0];
    const percent = Number.parseInt(snap?.Progress ?? '0', 10) || 0;
    o.out.progress({ phase: 'snapshot', done: percent, total: 100, unit: 'parts' });
    if (snap?.State === 'completed') break;
    if (snap?.State === 'error' || snap?.State === 'recoverable')
      throw new BundleError(
        `snapshot ${snapshotId} ended in state ${snap.State}${snap.StateMessage ? `: ${snap.StateMessage}` : ''}`,
      );
    await sleep(pollMs, undefined, o.signal ? { signal: o.signal } : {});
  }
  o.out.endProgress();
}

export async function toEbs(o: ToEbsOptions): Promise<ToEbsResult> {
  const started = process.hrtime.bigint();
  if (o.parentSnapshotId !== undefined && (o.encrypted || o.kmsKeyArn !== undefined))
    throw new UsageError(
      '--parent-snapshot may not be given with --encrypted or --kms-key: AWS refuses both in one StartSnapshot; the new snapshot takes the parent encryption',
    );
  const volumeGiB = volumeSizeGiB(o.source.size, o.sizeGiB);
  const journal = openJournal(o, volumeGiB);
  const clients = createEbsClients(o.conn);
  let bootMode: BootMode | undefined;
  try {
    const region = await checkEbsSetup(clients, o.conn);
    o.out.debug(`EBS region ${region}, volume ${volumeGiB} GiB, ${o.conn.concurrency} blocks in flight`);
    const writer = new SnapshotWriter(
      clients,
      o.conn,
      {
        volumeGiB,
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.tags ? { tags: o.tags } : {}),
        ...(o.encrypted || o.kmsKeyArn !== undefined ? { encrypted: true } : {}),
        ...(o.kmsKeyArn !== undefined ? { kmsKeyArn: o.kmsKeyArn } : {}),
        ...(o.parentSnapshotId !== undefined ? { parentSnapshotId: o.parentSnapshotId } : {}),
      },
      journal,
      o.out,
      o.signal,
      (id) => {
        o.out.info(`Snapshot ${id} (pending)`);
        o.out.event({ type: 'snapshot', snapshotId: id, state: 'pending' });
      },
    );
    const register = o.register;
    const sink = new SnapshotSink(writer, {
      imageSize: o.source.size,
      progress: !o.source.reportsProgress,
      out: o.out,
      ...(register
        ? {
            checkHead: (block0: Buffer) => {
              const found = inspectBootMode(block0);
              if (found.mode === undefined && !register.force)
                throw new BundleError(
                  `${o.sourceName} is not bootable under HVM: ${found.what}; an AMI registered from it would not boot`,
                  'make a bootable image first (unbundle --hvm, amibundle convert --hvm, or bundle-vol -P mbr), or give --force to register it anyway',
                );
              if (
                register.bootMode !== undefined &&
                found.mode !== undefined &&
                register.bootMode !== found.mode
              )
                o.out.warn(`--boot-mode ${register.bootMode} given, but the image holds ${found.what}`);
              bootMode = register.bootMode ?? found.mode;
              o.out.debug(`boot: ${found.what}`);
            },
          }
        : {}),
    });
    await journal.save();
    try {
      await o.source.run(sink);
    } catch (err) {
      await journal.flush().catch(() => undefined);
      if (writer.snapshotId !== undefined) {
        o.out.endProgress();
        o.out.warn(
          `Snapshot ${writer.snapshotId} is left pending with ${writer.blocksWritten} blocks written: run again with --resume to continue it (journal ${journal.file})`,
        );
        o.out.event({
          type: 'snapshot',
          snapshotId: writer.snapshotId,
          state: 'pending',
          journal: journal.file,
        });
      } else if (Object.keys(journal.state.blocks).length === 0) {
        await journal.remove();
      }
      throw err;
    }
    const snapshotId = writer.snapshotId!;
    await journal.remove();
    o.out.info(
      `Completing ${snapshotId}: ${writer.stats.blocksSent} blocks sent${writer.stats.blocksResumed ? `, ${writer.stats.blocksResumed} resumed` : ''}${writer.stats.zeroBlocksSkipped ? `, ${writer.stats.zeroBlocksSkipped} zero blocks skipped` : ''}${writer.stats.parentBlocksKept ? `, ${writer.stats.parentBlocksKept} kept from the parent` : ''}`,
    );
    try {
      await waitCompleted(clients, o, snapshotId);
    } catch (err) {
      o.out.endProgress();
      o.out.warn(`Snapshot ${snapshotId} was completed by to-ebs but is not (yet) usable`);
      throw err;
    }
    o.out.info(`Snapshot ${snapshotId} completed`);
    let imageId: string | undefined;
    if (register) {
      try {
        imageId = await registerImage(
          clients,
          o.conn,
          {
            ...register,
            snapshotId,
            architecture: register.architecture ?? o.source.architecture ?? 'x86_64',
            ...(bootMode !== undefined ? { bootMode } : {}),
            volumeGiB,
          },
          o.signal,
        );
      } catch (err) {
        o.out.warn(
          `Snapshot ${snapshotId} is completed; registering it failed (amibundle register ${snapshotId} retries that alone)`,
        );
        throw err;
      }
    }
    return {
      snapshotId,
      ...(imageId !== undefined ? { imageId } : {}),
      volumeGiB,
      ...(bootMode !== undefined ? { bootMode } : {}),
      stats: writer.stats,
      blocksWritten: writer.blocksWritten,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    clients.destroy();
  }
}
