// makeVolumeImage(): a live system or a directory -> an image file DEST/PREFIX, bare or with a
// partition table and GRUB 2. Everything happens in a private temporary directory and under a
// temporary image name, so runs do not collide and a failed or interrupted run leaves nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { silentReporter } from '../events.js';
import { AmiError, ExitCode } from '../errors.js';
import { CleanupStack } from './cleanup-stack.js';
import { planCopy, type RuleReason } from './copy-rules.js';
import {
  attachLoop,
  createImageFile,
  partitionImage,
  publishImage,
  type PartitionScheme,
} from './disk-image.js';
import { adjustFstab, generatedFstab } from './fstab.js';
import {
  findKernel,
  GRUB_MODULES_DIR,
  hasGrubModules,
  hostGrubInstaller,
  imageGrubInstaller,
  installGrub,
  kernelCommandLine,
  type GrubInstallResult,
} from './grub.js';
import {
  checkUuid,
  finishFs,
  fitLabel,
  isSupportedFs,
  makeFs,
  mountArgs,
  newUuid,
  type FsSpec,
  type ImageFsType,
} from './make-fs.js';
import { pathInImage } from './image-path.js';
import { volumePath } from './mountinfo.js';
import { mountWithUndo } from './mounts.js';
import { copyVolume, type CopyReport } from './rsync-copy.js';
import { notInstalled, onPath, runTool } from '../io/run-tool.js';
import { chooseImageSize, estimateData } from './size-plan.js';
import { probeSource, swapFiles, type SourceFacts } from './source-probe.js';

export type FstabChoice =
  | { readonly mode: 'keep' }
  | { readonly mode: 'file'; readonly text: string }
  | { readonly mode: 'generate'; readonly legacy: boolean };

export interface VolumeImageOptions {
  /** `-v`: the directory to copy (default `/`). */
  readonly volume: string;
  /** `-d`: where the image is written. */
  readonly destination: string;
  /** `-p`: the image's file name. */
  readonly prefix: string;
  /** `-s`: image size in MiB; default from the data to copy. */
  readonly sizeMiB?: number;
  readonly partition: PartitionScheme | 'auto';
  /** File system of the image; default the volume's (ext2/3/4, xfs), else ext4. */
  readonly fsType?: ImageFsType;
  /** `-a`: copy non-local mounts too. */
  readonly all: boolean;
  /** The security filter (off with `--no-filter`). */
  readonly filter: boolean;
  readonly excludes: readonly string[];
  readonly includes: readonly string[];
  /** `-k`/`-c` files: never copied, whatever the other options say. */
  readonly secretFiles: readonly string[];
  readonly fstab: FstabChoice;
  /** `-S`: run with the image's mount point before it is unmounted. */
  readonly script?: string;
  /** `--grub-config`: the GRUB configuration to use, as text. */
  readonly grubConfig?: string;
  /** Add console=ttyS0 to the kernel command line when it has no serial console. */
  readonly serialConsole: boolean;
  /** Version written into generated files. */
  readonly toolVersion: string;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
  /** Asked when some files could not be copied exactly; `--batch` answers yes. */
  readonly confirm?: (question: string) => Promise<boolean>;
}

export interface VolumeImageResult {
  readonly imagePath: string;
  readonly sizeMiB: number;
  readonly partition: PartitionScheme;
  readonly fsType: ImageFsType;
  readonly uuid: string;
  readonly label?: string;
  readonly copy: CopyReport;
  readonly grub?: GrubInstallResult;
  readonly seconds: number;
}

const tableTypes: Record<string, PartitionScheme> = { dos: 'mbr', gpt: 'gpt' };

function resolvePartition(
  requested: PartitionScheme | 'auto',
  facts: SourceFacts,
  out: Reporter,
): PartitionScheme {
  if (requested !== 'auto') return requested;
  if (facts.mount) {
    if (!facts.disk) {
      out.info(
        `The volume's device ${facts.device ?? facts.mount.source} is not a partition: making a bare file-system image (-P none).`,
      );
      return 'none';
    }
    const scheme = facts.disk.tableType ? tableTypes[facts.disk.tableType] : undefined;
    if (!scheme)
      throw new AmiError(
        `cannot tell the partition table type of ${facts.disk.device} (${facts.disk.tableType ?? 'none found'})`,
        ExitCode.usage,
        'give -P mbr, -P gpt or -P none',
      );
    out.info(
      `Partition table of ${facts.disk.device} detected: ${facts.disk.tableType}; using -P ${scheme}.`,
    );
    return scheme;
  }
  out.info(`Volume "${facts.volume}" is not a mount point.`);
  if (hasGrubModules(facts.volume) && findKernel(facts.volume)) {
    out.info('It has a kernel and GRUB 2 for BIOS: making a GPT disk image (-P gpt).');
    return 'gpt';
  }
  out.info(
    `It has no kernel or no GRUB 2 for BIOS (${GRUB_MODULES_DIR}): making a bare file-system image (-P none).`,
  );
  return 'none';
}

/**
 * Everything a disk image needs from the copied system and this host, checked before any work.
 * Only the running system (`-v /`) may run its own grub-install; a `-v DIR` tree is data, so
 * this host's grub-install is needed, with the tree's modules or else the host's.
 */
function checkBootable(volume: string, scheme: 'mbr' | 'gpt'): void {
  const trusted = volume === '/';
  if (!hasGrubModules(volume) && (trusted || !hasGrubModules('/')))
    throw new AmiError(
      `the system in ${volume} has no GRUB 2 for BIOS (${GRUB_MODULES_DIR} is missing), so a -P ${scheme} image could not boot`,
      undefined,
      'install grub-pc-bin (Debian/Ubuntu) or grub2-pc-modules (RHEL, Amazon Linux) in it, or use -P none for a paravirtual image',
    );
  if (!findKernel(volume))
    throw new AmiError(
      `the system in ${volume} has no kernel in /boot (vmlinuz-*), so a -P ${scheme} image could not boot`,
      undefined,
      'install a kernel in it, or use -P none for a paravirtual image started with --kernel',
    );
  if (!trusted || !imageGrubInstaller(volume)) {
    if (!hostGrubInstaller())
      throw new AmiError(
        trusted
          ? `the system in ${volume} has no grub-install, and neither has this host`
          : `this host has no grub-install, and the programs of ${volume} are never run (only -v / runs its own)`,
        undefined,
        'install grub2-common and grub-pc-bin on this host (Debian/Ubuntu)',
      );
    if (!onPath('udevadm'))
      throw new AmiError(
        "this host's grub-install needs udevadm to find the image's partitions",
        undefined,
        'install udev on this host',
      );
  }
  for (const tool of ['sfdisk', 'partx']) if (!onPath(tool)) throw notInstalled(tool);
}

function chooseFs(opts: VolumeImageOptions, facts: SourceFacts, out: Reporter): FsSpec {
  let type: ImageFsType;
  if (opts.fsType) type = opts.fsType;
  else if (facts.mount && isSupportedFs(facts.fsType)) type = facts.fsType;
  else {
    type = 'ext4';
    if (facts.mount)
      out.info(
        `The volume's file system is ${facts.fsType ?? 'unknown'}; the image gets ext4 (--fs-type to choose).`,
      );
  }
  let uuid: string;
  try {
    uuid = facts.mount && facts.uuid ? checkUuid(facts.uuid) : newUuid();
  } catch {
    uuid = newUuid(); // vfat-style short ids: not a UUID a Linux root can carry
  }
  const label = fitLabel(type, facts.label);
  if (facts.label && !label)
    out.warn(`the volume's label '${facts.label}' is too long for ${type}: the image has none`);
  return {
    type,
    uuid,
    ...(label ? { label } : {}),
    ...(facts.ext && facts.fsType === type ? { ext: facts.ext } : {}),
  };
}

async function makeSkeleton(root: string, out: Reporter): Promise<void> {
  // Mount points the kernel and init need, and the device nodes an initramfs-less boot uses
  // before devtmpfs is mounted (the reference made the same ones).
  const dirs: [string, number][] = [
    ['dev', 0o755],
    ['proc', 0o555],
    ['sys', 0o555],
  ];
  for (const [d, mode] of dirs) {
    const p = pathInImage(root, d);
    if (!fs.existsSync(p)) await fs.promises.mkdir(p, { mode });
  }
  const nodes: [string, string, string, string][] = [
    ['console', '600', '5', '1'],
    ['null', '666', '1', '3'],
    ['zero', '666', '1', '5'],
    ['tty', '666', '5', '0'],
  ];
  for (const [name, mode, major, minor] of nodes) {
    const p = pathInImage(root, `dev/${name}`);
    if (fs.existsSync(p)) continue;
    await runTool('mknod', ['-m', mode, p, 'c', major, minor], { out });
  }
}

function reportCopy(report: CopyReport, out: Reporter): void {
  const excludedCount = (r: RuleReason): number => report.excluded.get(r)?.length ?? 0;
  if (excludedCount('key') > 0)
    out.info(`Left out the signing key and certificate (-k, -c): ${report.excluded.get('key')!.join(', ')}`);
  const filtered = report.excluded.get('filter') ?? [];
  if (filtered.length > 0)
    out.info(
      `The security filter left out ${filtered.length} file${filtered.length === 1 ? '' : 's'} (keys, histories, editor files); --debug lists them, -i or --no-filter keeps them.`,
    );
  if (report.vanished.length > 0) {
    out.warn(`${report.vanished.length} file(s) vanished while being copied (the system is live):`);
    const shown = out.debugEnabled ? report.vanished : report.vanished.slice(0, 20);
    for (const p of shown) out.warn(`  ${p}`);
    if (shown.length < report.vanished.length)
      out.warn(`  … and ${report.vanished.length - shown.length} more (--debug lists all)`);
  }
  if (report.problems.length > 0) {
    out.warn(`${report.problems.length} item(s) could not be copied or preserved exactly:`);
    for (const p of report.problems) out.warn(`  ${p.path ? `${p.path}: ` : ''}${p.message}`);
  }
}

async function writeFstab(
  root: string,
  choice: FstabChoice,
  fsSpec: FsSpec,
  merged: readonly string[],
  opts: VolumeImageOptions,
  out: Reporter,
): Promise<void> {
  const file = pathInImage(root, 'etc/fstab');
  const identity = { uuid: fsSpec.uuid, type: fsSpec.type, ...(fsSpec.label ? { label: fsSpec.label } : {}) };
  let text: string;
  if (choice.mode === 'keep') {
    let current: string;
    try {
      current = await fs.promises.readFile(file, 'utf8');
    } catch {
      return; // no fstab in the volume (not a system, or one that needs none)
    }
    const adjusted = adjustFstab(current, identity, merged);
    for (const n of adjusted.notes) out.info(n);
    if (!adjusted.changed) return;
    text = adjusted.text;
  } else {
    text = choice.mode === 'file' ? choice.text : generatedFstab(identity, choice.legacy, opts.toolVersion);
    await fs.promises.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
    if (fs.existsSync(file))
      await fs.promises.copyFile(file, pathInImage(root, `${path.relative(root, file)}.old`));
  }
  const st = fs.existsSync(file) ? await fs.promises.stat(file) : undefined;
  await fs.promises.writeFile(file, text, { mode: st ? st.mode & 0o7777 : 0o644 });
  out.info('/etc/fstab:');
  for (const line of text.replace(/\n$/, '').split('\n')) out.info(`\t ${line}`);
}

export async function makeVolumeImage(opts: VolumeImageOptions): Promise<VolumeImageResult> {
  const started = process.hrtime.bigint();
  const out = opts.out ?? silentReporter;
  if (process.getuid?.() !== 0)
    throw new AmiError(
      'bundle-vol must run as root: it mounts the image and copies every file',
      undefined,
      'run it with sudo',
    );
  for (const tool of ['rsync', 'losetup', 'mount', 'umount', 'blkid', 'mknod'])
    if (!onPath(tool)) throw notInstalled(tool);

  const facts = await probeSource(opts.volume, out);
  const volume = facts.volume;
  const destination = fs.realpathSync(opts.destination);
  const imagePath = path.join(destination, opts.prefix);
  if (fs.existsSync(imagePath))
    throw new AmiError(
      `the specified image file ${imagePath} already exists`,
      undefined,
      'remove it or choose another -p',
    );

  const fsSpec0 = chooseFs(opts, facts, out);
  if (!onPath(fsSpec0.type === 'xfs' ? 'mkfs.xfs' : 'mke2fs'))
    throw notInstalled(fsSpec0.type === 'xfs' ? 'mkfs.xfs' : 'mke2fs');
  const scheme = resolvePartition(opts.partition, facts, out);
  if (scheme === 'none')
    out.info(
      'Not partitioning: the image is a bare file system with no boot loader, for paravirtual instances started with a kernel (--kernel); it cannot boot as HVM.',
    );
  else checkBootable(volume, scheme);
  out.info(
    `Using partition type "${scheme}", file system ${fsSpec0.type}, UUID ${fsSpec0.uuid}${fsSpec0.label ? `, label ${fsSpec0.label}` : ''}.`,
  );

  const cleanup = new CleanupStack(out);
  let failed = true;
  try {
    const work = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'amibundle-vol-'));
    cleanup.push(
      `remove ${work}`,
      () => fs.promises.rmdir(work),
      () => fs.rmdirSync(work),
    );
    const mnt = path.join(work, 'root');
    await fs.promises.mkdir(mnt, { mode: 0o755 });
    cleanup.push(
      `remove ${mnt}`,
      () => fs.promises.rmdir(mnt),
      () => fs.rmdirSync(mnt),
    );
    const tempImage = path.join(destination, `.${opts.prefix}.amibundle-${process.pid}.partial`);

    const plan = planCopy({
      volume,
      ...(facts.mount ? { volumeDevNumber: facts.mount.devNumber } : {}),
      mountsBelow: facts.mountsBelow,
      all: opts.all,
      filter: opts.filter,
      excludes: opts.excludes,
      includes: opts.includes,
      secretFiles: opts.secretFiles,
      imageFiles: [imagePath, tempImage],
      destination,
      workDirs: [work],
      swapFiles: swapFiles(),
    });
    for (const n of plan.notes) out.info(n);

    const estimate = await estimateData(volume, plan.pruned, opts.signal);
    const size = chooseImageSize(estimate, fsSpec0.type, scheme !== 'none', opts.sizeMiB);
    out.info(size.message);
    const fsSpec: FsSpec = { ...fsSpec0, ...(size.inodes ? { inodes: size.inodes } : {}) };

    await createImageFile(tempImage, size.sizeMiB, cleanup);
    if (scheme !== 'none') await partitionImage(tempImage, scheme, out);
    const loop = await attachLoop(tempImage, scheme, cleanup, out);
    await makeFs(fsSpec, loop.rootDevice, out);
    const unmountImage = await mountWithUndo([...mountArgs(fsSpec), loop.rootDevice], mnt, cleanup, out);

    out.info(`Copying ${volume} into the image file ${imagePath}...`);
    out.info('Excluding: ');
    for (const e of plan.excluded) out.info(`\t ${e}`);
    out.event({
      type: 'copy',
      volume,
      image: imagePath,
      sizeMiB: size.sizeMiB,
      dataBytes: estimate.bytes,
      files: estimate.inodes,
    });
    const report = await copyVolume(volume, mnt, plan.rules, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      out,
      totalBytes: estimate.bytes,
    });
    reportCopy(report, out);
    if (report.problems.length > 0 && opts.confirm) {
      const go = await opts.confirm(
        `${report.problems.length} item(s) could not be copied or preserved exactly (listed above).`,
      );
      if (!go)
        throw new AmiError(
          'stopped: the copy was not exact and that was not confirmed',
          undefined,
          'use --batch to accept',
        );
    }

    await makeSkeleton(mnt, out);
    await writeFstab(
      mnt,
      opts.fstab,
      fsSpec,
      plan.merged.map((m) => volumePath(volume, m.mountPoint)),
      opts,
      out,
    );

    if (opts.script) {
      out.info(`Customizing cloned volume mounted at ${mnt} with script ${opts.script}`);
      await runTool(opts.script, [mnt], { signal: opts.signal, out, what: `the --script ${opts.script}` });
    }

    let grub: GrubInstallResult | undefined;
    if (scheme !== 'none') {
      const kernel = findKernel(mnt);
      if (!kernel)
        throw new AmiError(
          `the image has no kernel in /boot: it was left out of the copy`,
          undefined,
          'check -e and the notes above',
        );
      out.info(`Installing GRUB 2 (i386-pc) with the ${scheme} boot scheme; kernel ${kernel.kernel}.`);
      grub = await installGrub({
        root: mnt,
        runImageTools: volume === '/',
        disk: loop.device,
        config: {
          uuid: fsSpec.uuid,
          fsType: fsSpec.type,
          scheme,
          kernel,
          cmdline: kernelCommandLine(mnt, fsSpec.uuid, opts.serialConsole),
          serialConsole: opts.serialConsole,
          title: `${opts.prefix}${kernel.version ? `, Linux ${kernel.version}` : ''}`,
        },
        ...(opts.grubConfig !== undefined ? { userConfig: opts.grubConfig } : {}),
        cleanup,
        ...(opts.signal ? { signal: opts.signal } : {}),
        out,
      });
      out.info(`GRUB installed with ${grub.installer}; configuration ${grub.configPath}.`);
    }

    await unmountImage();
    await finishFs(fsSpec, loop.rootDevice, out);
    await loop.detach();
    await publishImage(tempImage, imagePath);
    cleanup.keep(`remove ${tempImage}`);
    failed = false;
    out.info(`Image file created: ${imagePath}`);
    return {
      imagePath,
      sizeMiB: size.sizeMiB,
      partition: scheme,
      fsType: fsSpec.type,
      uuid: fsSpec.uuid,
      ...(fsSpec.label ? { label: fsSpec.label } : {}),
      copy: report,
      ...(grub ? { grub } : {}),
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    const leftovers = await cleanup.unwind();
    for (const l of leftovers) out.warn(`clean-up failed: ${l}`);
    if (leftovers.length > 0 && !failed)
      // eslint-disable-next-line no-unsafe-finally -- a mount or loop device left behind is a failure
      throw new AmiError(`the image was made but clean-up failed (${leftovers[0]})`);
  }
}
