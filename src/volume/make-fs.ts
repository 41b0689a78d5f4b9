// The image's file system: the source's type, label and UUID (ext2/3/4 and xfs), and for ext the
// source's own feature set, inode and block size, so an old kernel copied from the source can
// still mount what a newer host's mke2fs would otherwise make. XFS gets its UUID after the copy:
// the kernel refuses to mount two XFS file systems with one UUID at the same time.
import crypto from 'node:crypto';
import type { Reporter } from '../events.js';
import { AmiError } from '../errors.js';
import type { ExtParameters } from './source-probe.js';
import { runTool } from '../io/run-tool.js';

export type ImageFsType = 'ext2' | 'ext3' | 'ext4' | 'xfs';

export interface FsSpec {
  readonly type: ImageFsType;
  readonly uuid: string;
  readonly label?: string;
  readonly ext?: ExtParameters;
  /** Inode count for mke2fs when its default would be too few for the files to copy. */
  readonly inodes?: number;
}

export const supportedFsTypes: readonly ImageFsType[] = ['ext2', 'ext3', 'ext4', 'xfs'];

export function isSupportedFs(type: string | undefined): type is ImageFsType {
  return supportedFsTypes.includes(type as ImageFsType);
}

/** Label limits: ext 16 bytes, xfs 12. */
export function fitLabel(type: ImageFsType, label: string | undefined): string | undefined {
  if (!label) return undefined;
  const max = type === 'xfs' ? 12 : 16;
  return Buffer.byteLength(label) <= max ? label : undefined;
}

export function newUuid(): string {
  return crypto.randomUUID();
}

export function mke2fsArgs(spec: FsSpec, device: string, withFeatures: boolean): string[] {
  const args = ['-F', '-q', '-t', spec.type, '-U', spec.uuid];
  if (spec.label) args.push('-L', spec.label);
  // Without the source's block size, 4 KiB: mke2fs would pick 1 KiB blocks for small images.
  args.push('-b', String(spec.ext?.blockSize ?? 4096));
  if (spec.ext?.inodeSize) args.push('-I', String(spec.ext.inodeSize));
  if (withFeatures && spec.ext?.features.length) args.push('-O', `none,${spec.ext.features.join(',')}`);
  if (spec.inodes) args.push('-N', String(spec.inodes));
  // The file is sparse, so unwritten tables already read as zeros: writing them would only fill
  // holes (and the bundle). The instance's kernel finishes the lazy inode-table init itself.
  args.push('-E', 'lazy_itable_init=1,lazy_journal_init=1', device);
  return args;
}

/** Makes the file system on `device`. For xfs the UUID is a temporary one until {@link finishFs}. */
export async function makeFs(spec: FsSpec, device: string, out?: Reporter): Promise<void> {
  if (spec.type === 'xfs') {
    const args = ['-f', '-q'];
    if (spec.label) args.push('-L', spec.label);
    await runTool('mkfs.xfs', [...args, device], { out, what: 'making the xfs file system (mkfs.xfs)' });
    return;
  }
  try {
    await runTool('mke2fs', mke2fsArgs(spec, device, true), {
      out,
      what: `making the ${spec.type} file system (mke2fs)`,
    });
  } catch (err) {
    if (!spec.ext?.features.length) throw err;
    // This host's mke2fs does not know one of the source's features: fall back to its defaults.
    out?.warn(
      `this host's mke2fs cannot make the source's feature set (${spec.ext.features.join(',')}): using its defaults (${String(err)})`,
    );
    await runTool('mke2fs', mke2fsArgs(spec, device, false), {
      out,
      what: `making the ${spec.type} file system (mke2fs)`,
    });
  }
  // Interval checks off, as the reference did with tune2fs -i 0.
  await runTool('tune2fs', ['-c', '0', '-i', '0', device], { out, what: 'tuning the file system (tune2fs)' });
}

/** After unmounting: gives an xfs file system its final UUID. */
export async function finishFs(spec: FsSpec, device: string, out?: Reporter): Promise<void> {
  if (spec.type !== 'xfs') return;
  const r = await runTool('xfs_admin', ['-U', spec.uuid, device], {
    out,
    what: 'setting the xfs UUID (xfs_admin)',
  });
  out?.debug(r.stdout.trim());
}

/**
 * Mount options for the copy. ext4: no background inode-table zeroing while mounted (it would
 * turn the image's holes into written zeros). xfs needs no `nouuid`: its UUID is unique until
 * {@link finishFs}.
 */
export function mountArgs(spec: FsSpec): string[] {
  return spec.type === 'ext4' ? ['-t', spec.type, '-o', 'noinit_itable'] : ['-t', spec.type];
}

export function checkUuid(uuid: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid))
    throw new AmiError(`'${uuid}' is not a file-system UUID (expected 8-4-4-4-12 hex digits)`);
  return uuid.toLowerCase();
}
