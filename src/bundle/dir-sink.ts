// A PartSink writing into a local directory. Parts are written under hidden temporary names and
// renamed to their final names only once every part and the manifest are complete, so a failed
// or interrupted run leaves no new part or manifest behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../cli/reporter.js';
import type { PartDigests, PartSink, PartWriter, StoredPart } from './part-sink.js';

export class DirPartSink implements PartSink {
  readonly description: string;
  private readonly runId = crypto.randomBytes(6).toString('hex');
  private readonly temps = new Set<string>();
  private readonly committed: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly out?: Reporter,
  ) {
    this.description = dir;
  }

  private tempPath(label: string): string {
    return path.join(this.dir, `.${this.name}.${label}.amibundle-${this.runId}.tmp`);
  }

  async openPart(index: number): Promise<PartWriter> {
    const file = this.tempPath(`part.${index}`);
    const handle = await fs.promises.open(file, 'wx', 0o644);
    this.temps.add(file);
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
    this.temps.add(manifestTemp);
    for (const part of parts) {
      const from = this.tempPath(`part.${part.index}`);
      const to = path.join(this.dir, part.filename);
      await fs.promises.rename(from, to);
      this.temps.delete(from);
      this.committed.push(to);
    }
    const manifestPath = path.join(this.dir, manifestFileName);
    await fs.promises.rename(manifestTemp, manifestPath);
    this.temps.delete(manifestTemp);
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
    this.temps.clear();
    this.committed.length = 0;
  }
}
