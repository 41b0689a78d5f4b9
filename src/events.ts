// What the library tells its caller while it works: lines for people, structured events for
// machines, progress. It sits at the ground floor so that bundle/, restore/, s3/, volume/ and the
// rest report without knowing how (or whether) anything is shown; cli/reporter.ts renders it as
// text, progress bars or JSON lines.

export type OutputMode = 'text' | 'json' | 'quiet';

export interface ProgressUpdate {
  /** What is progressing, e.g. `bundle`, `upload`, `restore`. */
  readonly phase: string;
  readonly done: number;
  readonly total?: number;
  readonly unit: 'bytes' | 'parts';
}

// ---------------------------------------------------------------------------------------------
// Every structured event amibundle emits (`--json` prints each as one line, with `time` added,
// and `resources` on `done`). To emit a new event or a new command's `start`/`done`: add its
// interface here, add it to AmibundleEvent, and name the fields the README's JSON table must
// mention in EVENT_FIELDS (the compiler then insists on it, and test/cli/events-table.test.ts
// checks the README). cli/reporter.ts renders the union with an exhaustive switch.
// ---------------------------------------------------------------------------------------------

/** A line for people (text mode prints it on stdout). */
export interface InfoEvent {
  readonly type: 'info';
  readonly message: string;
}

/** A warning (text mode prints it on stderr). */
export interface WarningEvent {
  readonly type: 'warning';
  readonly message: string;
}

/** Throttled progress, at most once a second (cli/reporter.ts turns ProgressUpdate into it). */
export interface ProgressEvent {
  readonly type: 'progress';
  readonly phase: string;
  readonly done: number;
  readonly total: number | undefined;
  readonly unit: 'bytes' | 'parts';
}

/** One part written (bundle: its SHA-1) or read and checked (restore: `verified`). */
export interface PartEvent {
  readonly type: 'part';
  readonly index: number;
  readonly size: number;
  readonly sha1?: string;
  readonly verified?: true;
}

/** What a command starts working on. */
export type StartEvent = { readonly type: 'start' } & (
  | {
      readonly command: 'bundle-image';
      readonly image: string;
      readonly name: string;
      readonly size: number;
      readonly dataBytes: number;
    }
  | { readonly command: 'unbundle'; readonly manifest: string | undefined; readonly name: string }
  | { readonly command: 'upload-bundle'; readonly manifest: string; readonly bucket: string }
  | { readonly command: 'download-bundle'; readonly manifest: string; readonly bucket: string }
  | { readonly command: 'migrate-manifest'; readonly manifest: string }
  | { readonly command: 'doctor' }
  | { readonly command: 'keygen'; readonly bits: number }
  | { readonly command: 'bench'; readonly image: string; readonly generated: boolean }
  | { readonly command: 'to-ebs'; readonly source: string; readonly size: number }
  | { readonly command: 'from-ebs'; readonly snapshotId: string; readonly volumeSize: number }
);

/** bundle-vol: the copy into the image file begins. */
export interface CopyEvent {
  readonly type: 'copy';
  readonly volume: string;
  readonly image: string;
  readonly sizeMiB: number;
  readonly dataBytes: number;
  readonly files: number;
}

/** bundle-vol: the image file is made (before it is bundled). */
export interface ImageEvent {
  readonly type: 'image';
  readonly image: string;
  readonly sizeMiB: number;
  readonly partition: string;
  readonly fsType: string;
  readonly uuid: string;
  /** Files that could not be copied exactly (listed in the text output). */
  readonly problems: number;
  readonly seconds: number;
}

/** doctor: one check's outcome. */
export interface CheckEvent {
  readonly type: 'check';
  readonly name: string;
  readonly status: 'ok' | 'warning' | 'failed';
  readonly message: string;
  readonly fix?: string;
}

/** bench: one stage measured alone (more fields: see bench/report.ts StageResult). */
export interface StageEvent {
  readonly type: 'stage';
  readonly stage: string;
  readonly seconds: number;
  readonly mbPerSecond: number;
  readonly dataMbPerSecond: number;
}

/** bench: one end-to-end CLI run (more fields: see bench/report.ts EndToEndResult). */
export interface EndToEndEvent {
  readonly type: 'end-to-end';
  readonly command: 'bundle-image' | 'unbundle';
  readonly codec: string;
  readonly level: number;
  /** Whose bundle: amibundle's own or the ec2-ami-tools layout (tar -cS | gzip -9 | openssl enc). */
  readonly layout: 'amibundle' | 'ec2-ami-tools';
  readonly seconds: number;
  readonly dataMbPerSecond: number;
}

/** to-ebs: the snapshot exists (and, on failure, is left pending with a journal to resume). */
export interface SnapshotEvent {
  readonly type: 'snapshot';
  readonly snapshotId: string;
  readonly state: 'pending';
  /** The resume journal, when a failed run leaves the snapshot pending. */
  readonly journal?: string;
}

/** How a manifest signature was checked, in unbundle's and verify's `done`. */
export type SignatureReport =
  | { readonly verified: true; readonly with: 'cert' | 'privatekey'; readonly cert?: string | undefined }
  | { readonly verified: false; readonly reason: string };

/**
 * Where a restore's time went, on unbundle's `done` (the bench prints it): a stage's busy time
 * (io/busy-clock.ts: wall seconds it had work under way, queued or running), and for the threads
 * their CPU seconds (io/thread-cpu.ts).
 */
export interface StageBusy {
  readonly stage: string;
  readonly busySeconds?: number;
  readonly cpuSeconds?: number;
}

/** The result of a command. */
export type DoneEvent = { readonly type: 'done' } & (
  | {
      readonly command: 'bundle-image' | 'bundle-vol';
      /** bundle-vol: the image file that was bundled. */
      readonly image?: string;
      /** A path, or s3://bucket/prefix/NAME.manifest.xml when streamed. */
      readonly manifest: string;
      /** What RegisterImage takes as ImageLocation (streamed bundles). */
      readonly imageLocation?: string;
      readonly name: string;
      readonly parts: number;
      readonly size: number;
      readonly bundledSize: number;
      readonly digest: string;
      readonly seconds: number;
    }
  | {
      readonly command: 'unbundle';
      readonly image: string | undefined;
      readonly size: number;
      readonly digest: string;
      readonly signatureVerified: boolean;
      readonly signature: SignatureReport;
      readonly seconds: number;
      /** Busy seconds per restore stage: where the wall time went. */
      readonly stages: readonly StageBusy[];
    }
  | {
      readonly command: 'verify';
      readonly ok: true;
      readonly partsChecked: number;
      readonly signatureVerified: boolean;
      readonly signature: SignatureReport;
      readonly contentsChecked: boolean;
      readonly digest?: string;
      readonly size?: number;
    }
  | {
      readonly command: 'upload-bundle';
      readonly bucket: string;
      readonly manifestKey: string | undefined;
      readonly imageLocation?: string;
      readonly uploaded: number;
      readonly skipped: number;
      readonly bytesSent: number;
      readonly seconds: number;
    }
  | {
      readonly command: 'download-bundle';
      readonly manifestPath: string;
      readonly downloaded: number;
      readonly kept: number;
      readonly bytesReceived: number;
      readonly seconds: number;
    }
  | { readonly command: 'delete-bundle'; readonly deleted: number; readonly bucketRemoved: boolean }
  | {
      readonly command: 'migrate-manifest';
      readonly manifest: string;
      readonly backup: string;
      readonly sourceVersion: string;
      readonly signatureCheckedOver: string;
      readonly ec2Cert: string;
      readonly partition: string | undefined;
      readonly region: string | undefined;
      readonly kernelId: string | undefined;
      readonly ramdiskId: string | undefined;
      readonly removed: readonly string[];
    }
  | {
      readonly command: 'doctor';
      readonly checks: number;
      readonly ok: number;
      readonly warnings: number;
      readonly failed: number;
    }
  | {
      readonly command: 'keygen';
      readonly privateKey: string;
      readonly certificate: string;
      readonly bits: number;
      readonly notAfter: string;
      readonly fingerprint256: string;
    }
  | { readonly command: 'bench'; readonly report: object }
  | { readonly command: 'install-links'; readonly directory: string; readonly links: readonly string[] }
  | {
      readonly command: 'to-ebs';
      readonly snapshotId: string;
      readonly imageId?: string;
      readonly volumeGiB: number;
      readonly bootMode?: string;
      readonly blocksSent: number;
      readonly blocksResumed: number;
      readonly zeroBlocksSkipped: number;
      readonly parentBlocksKept: number;
      readonly seconds: number;
    }
  | { readonly command: 'register'; readonly snapshotId: string; readonly imageId: string }
  | {
      readonly command: 'convert';
      readonly ok: boolean;
      readonly input: string;
      readonly inputFormat: string;
      readonly output: string;
      readonly format: string;
      readonly virtualSize: number;
    }
  | ({
      readonly command: 'from-ebs';
      readonly snapshotId: string;
      readonly size: number;
      readonly blocks: number;
      readonly dataBytes: number;
      readonly pages: number;
      readonly getRequests: number;
      readonly checksumRetries: number;
      readonly seconds: number;
    } & ({ readonly manifest: string } | { readonly image: string; readonly format: string }))
  | {
      readonly command: 'ec2-ami-tools-version';
      readonly amiTools: string;
      readonly manifest: string;
      readonly amibundle: string;
    }
);

/** The run failed: the one line printed on stderr and the exit code. */
export interface ErrorEvent {
  readonly type: 'error';
  readonly exitCode: number;
  readonly message: string;
}

export type AmibundleEvent =
  | InfoEvent
  | WarningEvent
  | ProgressEvent
  | PartEvent
  | StartEvent
  | CopyEvent
  | ImageEvent
  | CheckEvent
  | StageEvent
  | EndToEndEvent
  | SnapshotEvent
  | DoneEvent
  | ErrorEvent;

export type EventType = AmibundleEvent['type'];

/** Every key any variant of an event type has (`keyof` of a union gives only the shared ones). */
type FieldsOf<T extends EventType> =
  Extract<AmibundleEvent, { type: T }> extends infer E ? (E extends unknown ? keyof E : never) : never;

/**
 * Every event type, with the fields the README's JSON table names for it. The `satisfies`
 * makes the compiler refuse a type missing here, one that does not exist, and a field no
 * variant of that type has; the README test compares the table with this object.
 */
export const EVENT_FIELDS = {
  start: ['command', 'image', 'manifest', 'name', 'size'],
  progress: ['phase', 'done', 'total', 'unit'],
  part: ['index', 'size', 'sha1', 'verified'],
  info: ['message'],
  warning: ['message'],
  copy: ['volume', 'image', 'sizeMiB', 'dataBytes', 'files'],
  image: ['image', 'sizeMiB', 'partition', 'fsType', 'uuid', 'problems', 'seconds'],
  check: ['name', 'status', 'message', 'fix'],
  stage: ['stage', 'seconds', 'mbPerSecond', 'dataMbPerSecond'],
  'end-to-end': ['command', 'codec', 'level', 'seconds', 'dataMbPerSecond'],
  snapshot: ['snapshotId', 'state', 'journal'],
  done: [
    'command',
    'manifest',
    'imageLocation',
    'size',
    'bundledSize',
    'digest',
    'parts',
    'seconds',
    'stages',
  ],
  error: ['exitCode', 'message'],
} as const satisfies { readonly [T in EventType]: readonly FieldsOf<T>[] };

/** The event types, in the README table's order. */
export const EVENT_TYPES = Object.keys(EVENT_FIELDS) as EventType[];

export interface Reporter {
  readonly mode: OutputMode;
  readonly debugEnabled: boolean;
  /** A progress line a person reads (stdout in text mode); becomes `{type:"info"}` in JSON. */
  info(line: string): void;
  /** A warning (stderr in text mode); `{type:"warning"}` in JSON. */
  warn(line: string): void;
  /** Detail printed only with --debug (stderr). Never pass secrets. */
  debug(line: string): void;
  /** A structured event: printed only in JSON mode. */
  event(e: AmibundleEvent): void;
  /** Throttled progress: a bar on a terminal, JSON `progress` events, nothing otherwise. */
  progress(p: ProgressUpdate): void;
  /** Ends any progress display (before printing the final lines). */
  endProgress(): void;
}

const nothing = (): void => undefined;

/** A reporter that drops everything: for library callers and tests. */
export const silentReporter: Reporter = {
  mode: 'quiet',
  debugEnabled: false,
  info: nothing,
  warn: nothing,
  debug: nothing,
  event: nothing,
  progress: nothing,
  endProgress: nothing,
};
