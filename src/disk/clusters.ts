// Cuts the member's ascending (offset, data) writes into the format's allocation unit (qcow2
// cluster, VMDK grain, VHD block). A unit is handed on once the writes have moved past it, with
// any bytes not written inside it zero; a unit no write touched is never handed on (a hole), nor
// is one whose bytes are all zero (a plain member's empty space), so the formats store neither.
import { zeroBlocks } from '../io/zero-scan.js';

export type UnitHandler = (index: number, unit: Buffer) => Promise<void>;

export class UnitCutter {
  private current: Buffer | undefined;
  private currentIndex = -1;
  private currentHasData = false;

  /** `onUnit` gets each unit's index and a buffer it may keep (a new one per unit). */
  constructor(
    readonly unitSize: number,
    private readonly onUnit: UnitHandler,
  ) {}

  async write(offset: number, chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const pos = offset + at;
      const index = Math.floor(pos / this.unitSize);
      const inUnit = pos - index * this.unitSize;
      const take = Math.min(this.unitSize - inUnit, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      at += take;
      if (index !== this.currentIndex) await this.emit();
      if (index !== this.currentIndex) {
        // A whole unit in one piece that is all zero: nothing to store, nothing to copy.
        if (take === this.unitSize && isZero(piece)) continue;
        this.currentIndex = index;
        this.current = Buffer.alloc(this.unitSize);
        this.currentHasData = false;
      }
      piece.copy(this.current!, inUnit);
      this.currentHasData = true;
    }
  }

  /** Hands on the unit still being filled; call once after the last write. */
  async finish(): Promise<void> {
    await this.emit();
  }

  private async emit(): Promise<void> {
    const unit = this.current;
    const index = this.currentIndex;
    const hasData = this.currentHasData;
    this.current = undefined;
    this.currentIndex = -1;
    this.currentHasData = false;
    if (unit && hasData && !isZero(unit)) await this.onUnit(index, unit);
  }
}

function isZero(buf: Buffer): boolean {
  return zeroBlocks(buf, buf.length)[0] === 1;
}
