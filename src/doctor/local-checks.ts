// The checks that need no network: destination space, the image (size and HVM bootability),
// the signing key and certificate, the EC2 certificate, the host tools bundle-vol runs, and the
// native engines that make gzip fast.
import fs from 'node:fs';
import path from 'node:path';
import { ec2CertCandidates, findEc2Cert } from '../crypto/ec2-cert.js';
import { checkKeyMatchesCertificate, loadCertificate, loadPrivateKey } from '../crypto/keys.js';
import { dataExtents } from '../io/extents.js';
import { loadAddon } from '../io/native.js';
import { GRUB_MODULES_DIR } from '../volume/grub.js';
import { mountContaining, readMountInfo } from '../volume/mountinfo.js';
import { onPath } from '../io/run-tool.js';
import { inspectBootSector } from '../format/boot-sector.js';
import { EC2_ROOT_LIMIT_BYTES } from '../ec2-limits.js';
import { formatBytes } from '../format-bytes.js';
import { failed, failedFrom, ok, warning, type CheckResult } from './check.js';

const TMPFS_MAGIC = 0x01021994;

export interface ImageFacts {
  readonly size: number;
  /** Bytes in data extents (holes excluded): the most a bundle of it can take. */
  readonly dataBytes: number;
}

export async function imageFacts(imagePath: string): Promise<ImageFacts> {
  const fd = fs.openSync(imagePath, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const extents = await dataExtents(fd, size);
    return { size, dataBytes: extents.reduce((sum, e) => sum + e.length, 0) };
  } finally {
    fs.closeSync(fd);
  }
}

export function checkImageSize(imagePath: string, facts: ImageFacts): CheckResult {
  const found = `${imagePath} is ${formatBytes(facts.size)} (${formatBytes(facts.dataBytes)} of data)`;
  if (facts.size > EC2_ROOT_LIMIT_BYTES)
    return failed(
      'image-size',
      `${found}: larger than the 10 GiB EC2 allows for an instance-store root device`,
      'shrink the file system and image below 10 GiB (resize2fs -M, then truncate), or make an EBS-backed AMI instead',
    );
  return ok('image-size', `${found}: within the 10 GiB instance-store root limit`);
}

const PV_FIX =
  'for HVM, make the image with bundle-vol -P mbr (or -P gpt), which installs GRUB 2; for a paravirtual launch, register it with --kernel';

export function checkImageBoot(imagePath: string): CheckResult {
  const layout = inspectBootSector(imagePath);
  switch (layout.kind) {
    case 'mbr-grub':
      return ok('image-boot', 'MBR with boot signature and GRUB boot code: bootable under HVM');
    case 'gpt-grub':
      return ok('image-boot', 'GPT with a BIOS boot partition and GRUB boot code: bootable under HVM');
    case 'bare-filesystem':
      return warning(
        'image-boot',
        `a bare ${layout.fsType} file system with no partition table or boot loader: not bootable under HVM; suits paravirtual launches with --kernel`,
        PV_FIX,
      );
    case 'gpt-no-bios-boot':
      return warning(
        'image-boot',
        'GPT without a BIOS boot partition: GRUB has nowhere to put its core image; not bootable under HVM (BIOS)',
        PV_FIX,
      );
    case 'gpt-no-loader':
    case 'mbr-no-loader':
      return warning(
        'image-boot',
        'a partition table with boot signature but no boot code: not bootable under HVM; suits paravirtual launches with --kernel',
        PV_FIX,
      );
    case 'mbr-other-loader':
      return warning(
        'image-boot',
        'an MBR with boot code that is not GRUB: HVM bootability cannot be confirmed',
        'check that the boot loader finds its configuration, or rebuild with bundle-vol -P mbr',
      );
    case 'unknown':
      return warning(
        'image-boot',
        'no MBR boot signature (0x55AA) and no known file system: not bootable under HVM',
        PV_FIX,
      );
  }
}

export function checkDestination(dest: string, projected: number | undefined): CheckResult {
  let stat: fs.StatsFs;
  try {
    stat = fs.statfsSync(dest);
  } catch (err) {
    return failedFrom('destination', err, `create ${dest} or choose another directory with -d`);
  }
  const free = stat.bavail * stat.bsize;
  const need = projected !== undefined ? `, the bundle needs at most ${formatBytes(projected)}` : '';
  const found = `${dest}: ${formatBytes(free)} free${need}`;
  if (projected !== undefined && free < projected)
    return failed(
      'destination',
      `${found}: not enough space`,
      'free space there or choose a larger directory with -d',
    );
  if (stat.type === TMPFS_MAGIC) {
    const mount = mountContaining(readMountInfo(), path.resolve(dest));
    return warning(
      'destination',
      `${found}; it is a tmpfs${mount ? ` (mounted at ${mount.mountPoint})` : ''}, so the bundle is held in RAM`,
      'choose a directory on disk with -d, e.g. -d /var/tmp, unless the machine has RAM to spare',
    );
  }
  return ok('destination', found);
}

export function checkKeys(keyPath: string | undefined, certPath: string | undefined): CheckResult {
  try {
    const keyWhat = `private key (-k ${keyPath})`;
    const certWhat = `certificate (-c ${certPath})`;
    const key = keyPath !== undefined ? loadPrivateKey(fs.readFileSync(keyPath, 'utf8'), keyWhat) : undefined;
    const cert =
      certPath !== undefined ? loadCertificate(fs.readFileSync(certPath, 'utf8'), certWhat) : undefined;
    if (key && cert) {
      checkKeyMatchesCertificate(key, cert, keyWhat, certWhat);
      return ok('keys', `private key ${keyPath} and certificate ${certPath} load and match`);
    }
    if (key)
      return warning(
        'keys',
        `private key ${keyPath} loads; no certificate (-c) given to match it against`,
        'add -c CERT',
      );
    return warning(
      'keys',
      `certificate ${certPath} loads; no private key (-k) given to match it against`,
      'add -k KEY',
    );
  } catch (err) {
    return failedFrom('keys', err);
  }
}

export function checkEc2Cert(explicit: string | undefined): CheckResult {
  try {
    return ok('ec2-cert', `EC2 certificate ${findEc2Cert(explicit)}`);
  } catch (err) {
    const r = failedFrom('ec2-cert', err);
    return { ...r, message: `${r.message} (looked in ${ec2CertCandidates().join(', ')})` };
  }
}

/** The type of the file system holding `dir`, for the mkfs bundle-vol will run. */
function fsTypeOf(dir: string): string | undefined {
  return mountContaining(readMountInfo(), path.resolve(dir))?.fsType;
}

export function checkHostTools(volume: string): CheckResult {
  const fsType = fsTypeOf(volume);
  const mkfs =
    fsType === 'xfs' ? 'mkfs.xfs' : fsType === 'ext2' || fsType === 'ext3' ? `mkfs.${fsType}` : 'mkfs.ext4';
  const wanted: { tool: string; pkg: string }[] = [
    { tool: 'rsync', pkg: 'rsync' },
    { tool: mkfs, pkg: mkfs === 'mkfs.xfs' ? 'xfsprogs' : 'e2fsprogs' },
    { tool: 'losetup', pkg: 'mount' },
    { tool: 'sfdisk', pkg: 'fdisk' },
    { tool: 'grub-install', pkg: 'grub2-common' },
  ];
  const missing = wanted.filter((w) => !onPath(w.tool));
  const grubModules = fs.existsSync(path.join('/', GRUB_MODULES_DIR, 'boot.img'));
  const pkgs = [...new Set(missing.map((m) => m.pkg)), ...(grubModules ? [] : ['grub-pc-bin'])];
  const names = [...wanted.map((w) => w.tool), `/${GRUB_MODULES_DIR}`];
  const source = `source ${volume} is ${fsType ?? 'of unknown type'}`;
  if (pkgs.length === 0) return ok('host-tools', `${names.join(', ')} present (${source})`);
  const absent = [...missing.map((m) => m.tool), ...(grubModules ? [] : [`/${GRUB_MODULES_DIR}`])];
  const onlyGrub = missing.every((m) => m.tool === 'grub-install');
  const message = `missing: ${absent.join(', ')} (${source})`;
  const fix = `apt-get install ${pkgs.join(' ')} (or your distribution's equivalent)`;
  // Without GRUB only -P none works; without the others nothing does.
  return onlyGrub
    ? warning('host-tools', `${message}; only -P none images can be made`, fix)
    : failed('host-tools', message, fix);
}

/**
 * The native addon and the optional libraries it speeds gzip with. Without them the bundles are the
 * same, only made and restored several times slower, so this is a warning, never a failure.
 */
export function checkEngines(): CheckResult {
  const load = loadAddon();
  if (!load.addon)
    return warning(
      'speed',
      `the native addon is not loaded (${load.error ?? 'unknown reason'}): TypeScript and zlib fallbacks, several times slower`,
      'reinstall (npm ci) with a C compiler, make and python3 present',
    );
  const missing: string[] = [];
  if (!load.addon.deflatePiece) missing.push('libdeflate0');
  if (load.addon.inflateEngine !== 'isa-l') missing.push('libisal2');
  if (missing.length === 0)
    return ok(
      'speed',
      'native addon with libdeflate (gzip compression) and ISA-L (--fast, parallel restore)',
    );
  return warning(
    'speed',
    `the native addon runs without ${missing.join(' and ')}: zlib does that work (the same bundles, slower)`,
    `apt-get install ${missing.join(' ')}${missing.includes('libisal2') ? '; ISA-L also needs libisal-dev when the addon is built (npm rebuild)' : ''}`,
  );
}
