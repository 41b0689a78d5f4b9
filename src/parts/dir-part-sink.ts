// A PartSink writing into a local directory. Parts are written under hidden temporary names and
// renamed to their final names only once every part and the manifest are complete, so a failed
// or interrupted run leaves no new part or manifest behind.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { ownedTempPath, sweepStaleTemps, trackTemp, untrackTemp } from '../io/owned-temp.js';
import type { PartDigests, PartSink, PartWriter, StoredPart } from './part-sink.js';

export class DirPartSink implements PartSink {
  readonly description: string;
  private readonly temps = new Set<string>();
  private readonly tempNames = new Map<string, string>();
  private readonly committed: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly out?: Reporter,
  ) {
    this.description = dir;
    // Temporaries of an earlier run of this bundle that was killed (SIGKILL leaves them behind).
    sweepStaleTemps(dir, name, out);
  }

  /** The temporary name for `label` (the same one on every call), carrying this process as owner. */
  private tempPath(label: string): string {
    let temp = this.tempNames.get(label);
    if (temp === undefined) {
      temp = ownedTempPath(this.dir, `${this.name}.${label}`);
      this.tempNames.set(label, temp);
    }
    return temp;
  }

  private track(file: string): void {
    this.temps.add(file);
    trackTemp(file);
  }

  private untrack(file: string): void {
    this.temps.delete(file);
    untrackTemp(file);
  }

  async openPart(index: number): Promise<PartWriter> {
    const file = this.tempPath(`part.${index}`);
    const handle = await fs.promises.open(file, 'wx', 0o644);
    this.track(file);
    return {
      write: async (chunk: Buffer): Promise<void> => {
        await handle.write(chunk);
      },
      close: async (_digests: PartDigests): Promise<void> => {
        await handle.close();
      },
    };
  }

  async commit(parts: readonly StoredPart[], manifestFileName: string, manifest: Buffer): Promise<string> {
    const manifestTemp = this.tempPath('manifest');
    await fs.promises.writeFile(manifestTemp, manifest, { flag: 'wx', mode: 0o644 });
    this.track(manifestTemp);
    for (const part of parts) {
      const from = this.tempPath(`part.${part.index}`);
      const to = path.join(this.dir, part.filename);
      await fs.promises.rename(from, to);
      this.untrack(from);
      this.committed.push(to);
    }
    const manifestPath = path.join(this.dir, manifestFileName);
    await fs.promises.rename(manifestTemp, manifestPath);
    this.untrack(manifestTemp);
    this.committed.push(manifestPath);
    this.warnAboutStaleParts(parts);
    return manifestPath;
  }

  /** An earlier, larger bundle of the same name leaves parts the new manifest does not name. */
  private warnAboutStaleParts(parts: readonly StoredPart[]): void {
    const current = new Set(parts.map((p) => p.filename));
    const prefix = `${this.name}.part.`;
    const stale = fs
      .readdirSync(this.dir)
      .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)) && !current.has(f));
    if (stale.length > 0)
      this.out?.warn(
        `${stale.length} part file(s) from an earlier bundle named ${this.name} remain in ${this.dir} (e.g. ${stale[0]}); the new manifest does not use them`,
      );
  }

  async abort(): Promise<void> {
    for (const file of [...this.temps, ...this.committed]) await fs.promises.rm(file, { force: true });
    for (const file of this.temps) untrackTemp(file);
    this.temps.clear();
    this.committed.length = 0;
  }
}
