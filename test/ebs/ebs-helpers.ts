// What the EBS CLI tests share: running `amibundle to-ebs|register` against the test server,
// reading a snapshot back block by block from the server's store, and making images.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { runCli, type CliResult } from '../support/cli.js';
import type { EbsServer } from '../support/ebs-server/index.js';

export const BLOCK = 512 * 1024;

export function ebsCli(
  server: EbsServer,
  args: readonly string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runCli('amibundle', [...args, '--endpoint-url', server.url], {
    ...opts,
    env: { ...server.env(), AMIBUNDLE_EBS_POLL_MS: '100' },
  });
}

/** The snapshot id the run printed (the first `snap-…`). */
export function snapshotIdOf(r: CliResult): string {
  const m = /snap-[0-9a-f]+/.exec(r.stdout + r.stderr);
  if (!m) throw new Error(`no snapshot id in output:\n${r.stdout}\n${r.stderr}`);
  return m[0];
}

/** SHA-256 of the snapshot's first `length` bytes as a reader sees them (holes read zero), and whether the rest is zero. */
export function snapshotDigest(
  server: EbsServer,
  id: string,
  length: number,
): { sha256: string; tailZero: boolean } {
  const snap = server.state.snapshots.get(id);
  if (!snap) throw new Error(`no snapshot ${id}`);
  const hash = crypto.createHash('sha256');
  const zero = Buffer.alloc(BLOCK);
  const blocks = (snap.volumeSize * 2 ** 30) / BLOCK;
  let tailZero = true;
  for (let i = 0; i < blocks; i++) {
    const data = server.state.blockSource(snap, i)?.block.data ?? zero;
    const start = i * BLOCK;
    if (start < length) hash.update(data.subarray(0, Math.min(BLOCK, length - start)));
    const tail = data.subarray(Math.max(0, Math.min(BLOCK, length - start)));
    if (tail.some((b) => b !== 0)) tailZero = false;
  }
  return { sha256: hash.digest('hex'), tailZero };
}

export function fileSha256(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(8 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Block indexes of `file` holding any non-zero byte. */
export function dataBlocks(file: string): number[] {
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const buf = Buffer.alloc(BLOCK);
  const out: number[] = [];
  try {
    for (let i = 0; i * BLOCK < size; i++) {
      const n = fs.readSync(fd, buf, 0, BLOCK, i * BLOCK);
      if (buf.subarray(0, n).some((b) => b !== 0)) out.push(i);
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

/** A sparse image of `size` bytes with random data written in the given blocks. */
export function sparseImage(file: string, size: number, blocks: readonly number[], seed = 1): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const i of blocks) {
      const data = crypto.createHash('sha512').update(`${seed}:${i}`).digest();
      const block = Buffer.alloc(BLOCK);
      for (let at = 0; at < BLOCK; at += 4096) data.copy(block, at + (i % 7) * 64);
      fs.writeSync(fd, block, 0, BLOCK, i * BLOCK);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** An MBR whose boot code carries GRUB's name, with one Linux partition: BIOS-bootable to doctor. */
export function writeBiosMbr(file: string): void {
  const mbr = Buffer.alloc(512);
  mbr.write('\xeb\x63\x90GRUB Geom Hard Disk Read Error', 0, 'latin1');
  mbr[446 + 4] = 0x83;
  mbr.writeUInt32LE(2048, 446 + 8);
  mbr.writeUInt32LE(4096, 446 + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, mbr, 0, 512, 0);
  fs.closeSync(fd);
}

/** A protective MBR and a GPT whose one entry is an EFI system partition, no GRUB boot code. */
export function writeUefiGpt(file: string): void {
  const head = Buffer.alloc(34 * 512);
  head[446 + 4] = 0xee;
  head.writeUInt32LE(1, 446 + 8);
  head[510] = 0x55;
  head[511] = 0xaa;
  head.write('EFI PART', 512, 'latin1');
  head.writeBigUInt64LE(2n, 512 + 72);
  head.writeUInt32LE(128, 512 + 80);
  head.writeUInt32LE(128, 512 + 84);
  Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex').copy(head, 1024);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
}
