// A fixed set of read buffers reused round-robin. Fresh memory costs a page fault per 4 KiB on
// first touch (about 1.5 ms per MiB on the VMs measured), more than reading the data into it; a
// buffer is handed out again only after its consumer said it was done with it.

export class BufferRing {
  private readonly buffers: Buffer[];
  private readonly busy: (Promise<unknown> | undefined)[];
  private next = 0;

  constructor(count: number, size: number) {
    this.buffers = Array.from({ length: count }, () => Buffer.allocUnsafe(size));
    this.busy = new Array<Promise<unknown> | undefined>(count);
  }

  /** The next buffer, once the consumer of its previous contents has finished with them. */
  async acquire(): Promise<Buffer> {
    const slot = this.next;
    this.next = (this.next + 1) % this.buffers.length;
    await this.busy[slot];
    this.busy[slot] = undefined;
    return this.buffers[slot]!;
  }

  /** Marks the buffer behind `view` busy until `consumed` settles; views of other memory are ignored. */
  release(view: Buffer, consumed: Promise<unknown>): void {
    const slot = this.buffers.findIndex((b) => b.buffer === view.buffer && b.byteOffset === view.byteOffset);
    if (slot >= 0) this.busy[slot] = consumed;
  }
}
