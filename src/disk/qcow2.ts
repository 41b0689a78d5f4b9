// qcow2 version 3 (docs/interop/qcow2.txt in QEMU), written in one pass. Layout, all in 64 KiB
// clusters: the header; the L1 table, reserved next since its size follows from the virtual size;
// then the guest's data clusters in guest order, each range's L2 table appended as soon as the
// writes have moved past the 512 MiB it maps; at the end the refcount blocks and refcount table,
// then the L1 table and header are filled in. Holes and all-zero clusters are left unallocated
// (no backing file, so they read as zeros). Every cluster in the file is used exactly once, so
// each refcount is 1 and every L1/L2 entry carries the "refcount is one" flag. Memory: the L1
// table (8 bytes per 512 MiB) and one L2 table. Virtual size: the image's, rounded up to a sector.
import type { TarMember } from '../format/tar-reader.js';
import { roundUp, SECTOR } from './image-sink.js';
import { OutputFile } from './output-file.js';
import { UnitSink } from './unit-sink.js';

const CLUSTER_BITS = 16;
const CLUSTER = 1 << CLUSTER_BITS;
/** L2 entries per table: each maps one cluster. */
const L2_ENTRIES = CLUSTER / 8;
/** 16-bit refcounts: entries per refcount block. */
const REFCOUNT_ORDER = 4;
const REFCOUNTS_PER_BLOCK = (CLUSTER * 8) >> REFCOUNT_ORDER;
const HEADER_LENGTH = 104;
/** Bit 63 of L1/L2 entries: the cluster's refcount is exactly one. */
const COPIED = 1n << 63n;

export class Qcow2Sink extends UnitSink {
  private readonly virtualSize: number;
  private readonly l1: BigUint64Array;
  private readonly l1Clusters: number;
  /** The L2 table being filled, and which L1 entry it belongs to (-1: none yet). */
  private l2 = new BigUint64Array(L2_ENTRIES);
  private l2Index = -1;
  private l2Used = false;

  constructor(
    finalPath: string,
    private readonly member: TarMember,
  ) {
    // QEMU sizes images in whole sectors: round up (the tail reads as zeros).
    const virtualSize = roundUp(member.size, SECTOR);
    const l1Size = Math.ceil(virtualSize / (CLUSTER * L2_ENTRIES));
    const l1Clusters = Math.ceil((l1Size * 8) / CLUSTER);
    super(new OutputFile(finalPath, (1 + l1Clusters) * CLUSTER), CLUSTER);
    this.virtualSize = virtualSize;
    this.l1 = new BigUint64Array(l1Size);
    this.l1Clusters = l1Clusters;
  }

  protected async unit(index: number, data: Buffer): Promise<void> {
    const l1Index = Math.floor(index / L2_ENTRIES);
    if (l1Index !== this.l2Index) await this.closeL2(l1Index);
    this.l2[index % L2_ENTRIES] = BigInt(this.file.position) | COPIED;
    this.l2Used = true;
    await this.file.append(data);
  }

  /** Appends the finished L2 table (if it maps anything) and starts the one for `next`. */
  private async closeL2(next: number): Promise<void> {
    if (this.l2Used) {
      this.l1[this.l2Index] = BigInt(this.file.position) | COPIED;
      await this.file.append(bigEndian(this.l2));
      this.l2 = new BigUint64Array(L2_ENTRIES);
    }
    this.l2Index = next;
    this.l2Used = false;
  }

  async commit(): Promise<string> {
    await this.cutter.finish();
    await this.closeL2(-1);
    // Refcount blocks and table go last; they count themselves, so size them to a fixed point.
    const base = this.file.position / CLUSTER;
    let blocks = 0;
    let tableClusters = 0;
    for (;;) {
      const total = base + blocks + tableClusters;
      const b = Math.ceil(total / REFCOUNTS_PER_BLOCK);
      const t = Math.max(1, Math.ceil((b * 8) / CLUSTER));
      if (b === blocks && t === tableClusters) break;
      blocks = b;
      tableClusters = t;
    }
    const totalClusters = base + blocks + tableClusters;
    const table = Buffer.alloc(tableClusters * CLUSTER);
    for (let i = 0; i < blocks; i++) {
      table.writeBigUInt64BE(BigInt((base + i) * CLUSTER), i * 8);
      const block = Buffer.alloc(CLUSTER);
      const used = Math.min(REFCOUNTS_PER_BLOCK, totalClusters - i * REFCOUNTS_PER_BLOCK);
      for (let e = 0; e < used; e++) block.writeUInt16BE(1, e * 2);
      await this.file.append(block);
    }
    const tableOffset = this.file.position;
    await this.file.append(table);
    await this.file.flush();

    if (this.l1.length > 0) await this.file.writeAt(CLUSTER, bigEndian(this.l1));
    await this.file.writeAt(0, this.header(tableOffset, tableClusters));
    return this.file.commit(totalClusters * CLUSTER, this.member.mode, this.member.mtime);
  }

  private header(refcountTableOffset: number, refcountTableClusters: number): Buffer {
    const h = Buffer.alloc(HEADER_LENGTH + 8); // + the end-of-extensions marker (zeros)
    h.write('QFI\xfb', 0, 'latin1');
    h.writeUInt32BE(3, 4); // version
    // 8: no backing file (offset 0, size 0)
    h.writeUInt32BE(CLUSTER_BITS, 20);
    h.writeBigUInt64BE(BigInt(this.virtualSize), 24);
    h.writeUInt32BE(0, 32); // no encryption
    h.writeUInt32BE(this.l1.length, 36);
    // The L1 table right after the header cluster; an empty image has none (offset 0, as QEMU does).
    h.writeBigUInt64BE(BigInt(this.l1.length > 0 ? CLUSTER : 0), 40);
    h.writeBigUInt64BE(BigInt(refcountTableOffset), 48);
    h.writeUInt32BE(refcountTableClusters, 56);
    // 60: no snapshots; 72-95: no incompatible, compatible or autoclear features
    h.writeUInt32BE(REFCOUNT_ORDER, 96);
    h.writeUInt32BE(HEADER_LENGTH, 100);
    return h;
  }

  async discard(): Promise<void> {
    await this.file.discard();
  }
}

function bigEndian(entries: BigUint64Array): Buffer {
  const out = Buffer.alloc(entries.length * 8);
  for (let i = 0; i < entries.length; i++) if (entries[i]) out.writeBigUInt64BE(entries[i]!, i * 8);
  return out;
}
