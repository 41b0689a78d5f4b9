// The test server's state: snapshots with their blocks and their pending → completed/error state
// machine, and the images registered from them. Time-driven transitions (the "does not exist yet"
// window after StartSnapshot, completion after CompleteSnapshot, the StartSnapshot Timeout) are
// evaluated lazily against the clock whenever a snapshot is looked at, so no timers are left
// running when a test ends.
import crypto from 'node:crypto';

export const BLOCK_SIZE = 524288;
/** Blocks per GiB of volume size. */
export const BLOCKS_PER_GIB = (1024 * 1024 * 1024) / BLOCK_SIZE;

export type SnapshotStatus = 'pending' | 'completed' | 'error';

export interface StoredBlock {
  readonly data: Buffer;
  /** SHA-256 of data (raw digest). */
  readonly digest: Buffer;
}

export interface Tag {
  readonly Key: string;
  readonly Value: string;
}

export interface Snapshot {
  readonly id: string;
  readonly ownerId: string;
  readonly volumeSize: number;
  readonly parentId: string | undefined;
  readonly encrypted: boolean;
  readonly kmsKeyArn: string | undefined;
  readonly description: string | undefined;
  tags: Tag[];
  readonly clientToken: string | undefined;
  /** The StartSnapshot request body that created it (for ClientToken idempotency). */
  readonly requestFingerprint: string;
  readonly startTime: Date;
  /** Before this instant the snapshot is unknown to every call ("does not exist" window). */
  readonly visibleAt: number;
  /** While pending: the instant after which it turns to error (StartSnapshot Timeout). */
  readonly timeoutAt: number;
  status: SnapshotStatus;
  statusMessage: string | undefined;
  /** Last x-amz-Progress a client sent. */
  progress: number;
  /** Blocks written to this snapshot itself (not inherited from the parent). */
  readonly blocks: Map<number, StoredBlock>;
  /** Set by CompleteSnapshot: when the state changes, and to what. */
  completion: { at: number; outcome: 'completed' | 'error'; message?: string } | undefined;
}

export interface Image {
  readonly id: string;
  readonly name: string;
  readonly description: string | undefined;
  readonly architecture: string;
  readonly rootDeviceName: string;
  readonly virtualizationType: string;
  readonly bootMode: string | undefined;
  readonly enaSupport: boolean | undefined;
  readonly sriovNetSupport: string | undefined;
  readonly imdsSupport: string | undefined;
  readonly tpmSupport: string | undefined;
  readonly blockDeviceMappings: ReadonlyArray<{
    deviceName: string;
    virtualName?: string;
    noDevice?: boolean;
    ebs?: {
      snapshotId?: string;
      volumeSize: number;
      volumeType: string;
      deleteOnTermination: boolean;
      encrypted: boolean;
      iops?: number;
      throughput?: number;
    };
  }>;
  readonly creationDate: Date;
  deprecationTime: Date | undefined;
  tags: Tag[];
}

export interface StoreTiming {
  notFoundWindowMs: number;
  completionDelayMs: number;
  /** Length of one of StartSnapshot Timeout's minutes (tests shorten it). */
  minuteMs: number;
}

function hexId(prefix: string): string {
  return `${prefix}-${crypto.randomBytes(8).toString('hex').slice(0, 17)}`;
}

export class Store {
  readonly snapshots = new Map<string, Snapshot>();
  readonly images = new Map<string, Image>();
  /** Secret for block and page tokens: a token made by another server instance is refused. */
  readonly tokenKey = crypto.randomBytes(32);

  constructor(
    readonly ownerId: string,
    readonly timing: StoreTiming,
  ) {}

  newSnapshotId(): string {
    return hexId('snap');
  }

  newImageId(): string {
    return hexId('ami');
  }

  /** Applies the time-driven transitions that are due. */
  refresh(s: Snapshot, now = Date.now()): void {
    if (s.status !== 'pending') return;
    if (s.completion) {
      if (now >= s.completion.at) {
        s.status = s.completion.outcome;
        s.statusMessage = s.completion.message;
        if (s.status === 'completed') s.progress = 100;
      }
      return;
    }
    if (now >= s.timeoutAt) {
      s.status = 'error';
      s.statusMessage = 'The snapshot was not completed within its timeout.';
    }
  }

  /** The snapshot as a caller sees it: undefined while unknown (never created, or still in the window). */
  visible(id: string, now = Date.now()): Snapshot | undefined {
    const s = this.snapshots.get(id);
    if (!s || now < s.visibleAt) return undefined;
    this.refresh(s, now);
    return s;
  }

  /** The snapshot id (this one or an ancestor) whose block is visible at `index`, if any. */
  blockSource(s: Snapshot, index: number): { snapshot: Snapshot; block: StoredBlock } | undefined {
    for (
      let cur: Snapshot | undefined = s;
      cur;
      cur = cur.parentId ? this.snapshots.get(cur.parentId) : undefined
    ) {
      const b = cur.blocks.get(index);
      if (b) return { snapshot: cur, block: b };
    }
    return undefined;
  }

  /** Every block index with data in `s` (its own and inherited ones), ascending, below its size. */
  blockIndices(s: Snapshot): number[] {
    const all = new Set<number>();
    for (
      let cur: Snapshot | undefined = s;
      cur;
      cur = cur.parentId ? this.snapshots.get(cur.parentId) : undefined
    )
      for (const i of cur.blocks.keys()) all.add(i);
    const limit = s.volumeSize * BLOCKS_PER_GIB;
    return [...all].filter((i) => i < limit).sort((a, b) => a - b);
  }

  lineage(s: Snapshot): Set<string> {
    const ids = new Set<string>();
    for (
      let cur: Snapshot | undefined = s;
      cur;
      cur = cur.parentId ? this.snapshots.get(cur.parentId) : undefined
    )
      ids.add(cur.id);
    return ids;
  }

  blockToken(source: Snapshot, index: number): string {
    const mac = crypto
      .createHmac('sha256', this.tokenKey)
      .update(`${source.id}:${index}`)
      .digest()
      .subarray(0, 12);
    return Buffer.from(`${source.id}:${index}:${mac.toString('hex')}`).toString('base64');
  }

  /** The block a token names, when it is a token this server made for that index. */
  parseBlockToken(token: string, index: number): string | undefined {
    const text = Buffer.from(token, 'base64').toString('utf8');
    const [id, idx, mac] = text.split(':');
    if (!id || idx !== String(index) || !mac) return undefined;
    const want = crypto
      .createHmac('sha256', this.tokenKey)
      .update(`${id}:${index}`)
      .digest()
      .subarray(0, 12)
      .toString('hex');
    return mac === want ? id : undefined;
  }

  pageToken(kind: string, snapshotId: string, next: number): string {
    const mac = crypto
      .createHmac('sha256', this.tokenKey)
      .update(`${kind}:${snapshotId}:${next}`)
      .digest()
      .subarray(0, 12);
    return Buffer.from(`${kind}:${snapshotId}:${next}:${mac.toString('hex')}`).toString('base64');
  }

  parsePageToken(token: string, kind: string, snapshotId: string): number | undefined {
    const [k, id, next, mac] = Buffer.from(token, 'base64').toString('utf8').split(':');
    if (k !== kind || id !== snapshotId || next === undefined || !/^\d+$/.test(next) || !mac)
      return undefined;
    const want = crypto
      .createHmac('sha256', this.tokenKey)
      .update(`${k}:${id}:${next}`)
      .digest()
      .subarray(0, 12)
      .toString('hex');
    return mac === want ? Number(next) : undefined;
  }
}

/** LINEAR aggregation: SHA-256 over the written blocks' digests in ascending block-index order. */
export function linearChecksum(blocks: Map<number, StoredBlock>): string {
  const h = crypto.createHash('sha256');
  for (const i of [...blocks.keys()].sort((a, b) => a - b)) h.update(blocks.get(i)!.digest);
  return h.digest('base64');
}
