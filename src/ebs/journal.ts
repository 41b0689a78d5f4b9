// The --resume journal of to-ebs: which pending snapshot an upload writes into, and which blocks
// EBS has acknowledged (with their SHA-256, for the aggregate checksum CompleteSnapshot needs).
// It sits next to the source, mode 0600, and is replaced atomically (temporary file, fsync,
// rename), so a kill -9 leaves either the old or the new journal, never a torn one. It holds no
// secrets: ids, sizes, options and checksums only. Blocks acknowledged after the last write are
// simply sent again on resume (writing a block twice into a pending snapshot is allowed).
import fs from 'node:fs';
import path from 'node:path';
import { BundleError } from '../errors.js';

export interface JournalState {
  readonly version: 1;
  /** What was uploaded: the source as given, and what identifies its content. */
  readonly source: string;
  readonly sourceId: string;
  /** StartSnapshot's idempotency token: a retried or resumed start gets the same snapshot. */
  readonly clientToken: string;
  snapshotId?: string;
  /** The options that shape the snapshot; a resume with others is refused. */
  readonly shape: string;
  /** Block index -> base64 SHA-256 of the block acknowledged by PutSnapshotBlock. */
  blocks: Record<string, string>;
}

/** Where the journal of `source` lives: next to a local source, in the current directory for s3://. */
export function journalPathFor(source: string): string {
  if (source.startsWith('s3://')) return path.resolve(`${path.posix.basename(source)}.to-ebs-journal`);
  return `${path.resolve(source)}.to-ebs-journal`;
}

export function readJournal(file: string): JournalState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let state: JournalState;
  try {
    state = JSON.parse(text) as JournalState;
  } catch {
    throw new BundleError(`the resume journal ${file} is not valid JSON`, `remove ${file} to start over`);
  }
  if (state.version !== 1 || typeof state.clientToken !== 'string' || typeof state.blocks !== 'object')
    throw new BundleError(
      `the resume journal ${file} is not one amibundle wrote`,
      `remove ${file} to start over`,
    );
  return state;
}

/** Writes the journal now and then (never two writes at once), and once more at the end. */
export class Journal {
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly file: string,
    readonly state: JournalState,
    /** Coalesce acknowledgements for this long before writing. */
    private readonly delayMs = 250,
  ) {}

  /** Writes the state now (start, snapshot id): resolves once it is on disk. */
  async save(): Promise<void> {
    this.dirty = true;
    await this.flush();
  }

  acknowledge(index: number, checksum: string): void {
    this.state.blocks[String(index)] = checksum;
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => undefined); // a failed write is retried by the next flush
    }, this.delayMs);
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const run = async (): Promise<void> => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        writeAtomically(this.file, JSON.stringify(this.state));
      } catch (err) {
        this.dirty = true;
        throw err;
      }
    };
    this.writing = this.writing.then(run, run);
    await this.writing;
  }

  /** The upload is complete: the journal has served its purpose. */
  async remove(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dirty = false;
    await this.writing.catch(() => undefined);
    fs.rmSync(this.file, { force: true });
  }
}

function writeAtomically(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(temp, 0o600);
  fs.renameSync(temp, file);
}
