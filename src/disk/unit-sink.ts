// What the encoding sinks (qcow2, VMDK, VHD dynamic) share: the output under a temporary name,
// and a cutter that hands the image over in the format's unit (cluster, grain or block) with
// holes and all-zero units left out. Each format only says what one unit becomes and how the
// file is finished.
import { UnitCutter } from './clusters.js';
import type { ImageSink } from './image-sink.js';
import type { OutputFile } from './output-file.js';

export abstract class UnitSink implements ImageSink {
  protected readonly cutter: UnitCutter;

  constructor(
    protected readonly file: OutputFile,
    unit: number,
  ) {
    this.cutter = new UnitCutter(unit, (index, data) => this.unit(index, data));
  }

  /** Stores unit `index` of the image (never a hole or all zeros). */
  protected abstract unit(index: number, data: Buffer): Promise<void>;

  abstract commit(): Promise<string>;

  abstract discard(): Promise<void>;

  get path(): string {
    return this.file.finalPath;
  }

  get bytesWritten(): number {
    return this.file.bytesWritten;
  }

  get replaced(): string | undefined {
    return this.file.replaced;
  }

  open(): Promise<void> {
    return this.file.open();
  }

  write(offset: number, chunk: Buffer): Promise<void> {
    return this.cutter.write(offset, chunk);
  }
}
