// qemu-img (Debian's qemu-utils), the independent oracle for the disk formats: `check` for the
// formats it can check, `compare` against the raw image, `info` for format and subformat.
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import type { DiskFormat } from '../../src/disk/image-sink.js';

/** The formats under test (every one but raw, which the rest of the suite covers). */
export const FORMATS: readonly Exclude<DiskFormat, 'raw'>[] = ['qcow2', 'vmdk', 'vhd', 'vhd-fixed'];

/** qemu-img's driver name for each of our formats. */
export const QEMU_FORMAT: Readonly<Record<Exclude<DiskFormat, 'raw'>, string>> = {
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vhd: 'vpc',
  'vhd-fixed': 'vpc',
};

export function qemuImg(args: readonly string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('qemu-img', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `qemu-img check` finds no error (VHD: qemu-img has no checker for it, so nothing to run). */
export function expectCheckClean(format: Exclude<DiskFormat, 'raw'>, file: string): void {
  if (format === 'vhd' || format === 'vhd-fixed') return;
  const r = qemuImg(['check', '-f', QEMU_FORMAT[format], file]);
  expect(r.stdout + r.stderr).toContain('No errors were found on the image.');
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

/** `qemu-img compare` reads the same bytes from the raw image and the formatted one. */
export function expectSameAsRaw(format: Exclude<DiskFormat, 'raw'>, raw: string, file: string): void {
  const r = qemuImg(['compare', '-f', 'raw', raw, '-F', QEMU_FORMAT[format], file]);
  expect(r.stdout, r.stderr).toContain('Images are identical.');
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

export interface QemuInfo {
  format: string;
  'virtual-size': number;
  'format-specific'?: { type: string; data: Record<string, unknown> };
}

export function qemuInfo(format: Exclude<DiskFormat, 'raw'>, file: string): QemuInfo {
  const r = qemuImg(['info', '--output=json', '-f', QEMU_FORMAT[format], file]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as QemuInfo;
}
