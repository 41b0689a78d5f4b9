// The system the boot tests bundle: Debian (this host's release, from this host's apt mirror)
// made by debootstrap --variant=minbase with a cloud kernel, GRUB 2 for BIOS and systemd, kept
// as a tar in a cache directory between runs on one machine; and the per-run changes made to an
// extracted copy: the boot marker (a systemd unit that prints a nonce on the serial console and
// powers off) and the device names the source system used for its root.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hostAptSources, hostCodename, mirrorFor } from './apt-sources.js';
import { runLogged, tail } from './run.js';
import { bootWorkRoot, releaseBelow, removeTree } from './scratch.js';

/** What the test system holds beyond minbase; the cache is keyed on this list. */
export const systemPackages = [
  'linux-image-cloud-amd64',
  'initramfs-tools',
  'grub-pc-bin',
  'grub2-common',
  'systemd-sysv',
] as const;

/** Bumped whenever the build below changes what ends up in the tree. */
const RECIPE = 1;

export const cacheDir = process.env.AMIBUNDLE_BOOT_CACHE ?? '/var/tmp/amibundle-boot-cache';

export interface SystemSpec {
  readonly suite: string;
  readonly mirror: string;
  readonly keyring?: string;
  readonly packages: readonly string[];
}

/** This host's release and the apt mirror it installs that release from. */
export function hostSystemSpec(): SystemSpec {
  const suite = hostCodename();
  const override = process.env.AMIBUNDLE_BOOT_MIRROR;
  if (override) return { suite, mirror: override, packages: systemPackages };
  const source = mirrorFor(hostAptSources(), suite);
  if (!source)
    throw new Error(
      `no apt source for "${suite} main" in /etc/apt/sources.list(.d): the boot tests debootstrap from this machine's own Debian mirror (or set AMIBUNDLE_BOOT_MIRROR)`,
    );
  return {
    suite,
    mirror: source.uri,
    ...(source.keyring && fs.existsSync(source.keyring) ? { keyring: source.keyring } : {}),
    packages: systemPackages,
  };
}

export function cacheKey(spec: SystemSpec): string {
  const text = JSON.stringify({
    recipe: RECIPE,
    arch: 'amd64',
    variant: 'minbase',
    suite: spec.suite,
    mirror: spec.mirror,
    packages: [...spec.packages].sort(),
  });
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export interface CachedSystem {
  readonly tar: string;
  /** True when this call built it (a cold cache). */
  readonly built: boolean;
  readonly seconds: number;
}

const tarOptions = ['--numeric-owner', '--xattrs', '--xattrs-include=*', '--acls'];

async function buildSystem(spec: SystemSpec, tarFile: string, log: (line: string) => void): Promise<void> {
  fs.mkdirSync(bootWorkRoot, { recursive: true });
  const build = fs.mkdtempSync(path.join(bootWorkRoot, 'amibundle-boot-build-'));
  const root = path.join(build, 'root');
  try {
    log(`debootstrap --variant=minbase ${spec.suite} from ${spec.mirror} (+ ${spec.packages.join(', ')})`);
    try {
      await runLogged(
        'debootstrap',
        [
          '--variant=minbase',
          '--arch=amd64',
          '--components=main',
          `--include=${spec.packages.join(',')}`,
          ...(spec.keyring ? [`--keyring=${spec.keyring}`] : []),
          spec.suite,
          root,
          spec.mirror,
        ],
        {
          timeLimitMs: 30 * 60_000,
          logFile: path.join(build, 'debootstrap.out'),
          env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
          what: 'building the test system (debootstrap)',
        },
      );
    } catch (err) {
      const detail = path.join(root, 'debootstrap/debootstrap.log');
      const more = fs.existsSync(detail)
        ? `\ndebootstrap.log:\n${tail(fs.readFileSync(detail, 'utf8'), 20)}`
        : '';
      throw new Error(`${(err as Error).message}${more}`);
    }
    for (const f of fs.readdirSync(path.join(root, 'var/cache/apt/archives')))
      if (f.endsWith('.deb')) fs.rmSync(path.join(root, 'var/cache/apt/archives', f));
    fs.writeFileSync(path.join(root, 'etc/hostname'), 'amibundle-boot-test\n');
    // debootstrap mounts /proc and /sys in the target; none of that belongs in the tar.
    const left = releaseBelow(root);
    if (left.length > 0) throw new Error(`cannot unmount ${left.join(', ')} after debootstrap`);
    const partial = `${tarFile}.partial-${process.pid}`;
    try {
      await runLogged('tar', ['--create', '--file', partial, ...tarOptions, '-C', root, '.'], {
        timeLimitMs: 10 * 60_000,
        what: 'packing the test system into the cache (tar)',
      });
      fs.renameSync(partial, tarFile);
    } finally {
      fs.rmSync(partial, { force: true });
    }
  } finally {
    removeTree(build);
  }
}

/** The test system as a tar, built (several minutes) when the cache does not hold it yet. */
export async function cachedSystem(
  spec: SystemSpec,
  log: (line: string) => void = () => {},
): Promise<CachedSystem> {
  const started = Date.now();
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const tarFile = path.join(cacheDir, `debian-${spec.suite}-${cacheKey(spec)}.tar`);
  if (fs.existsSync(tarFile)) return { tar: tarFile, built: false, seconds: (Date.now() - started) / 1000 };
  await buildSystem(spec, tarFile, log);
  // Trees built by another recipe or package list are dead weight now.
  for (const f of fs.readdirSync(cacheDir))
    if (/^debian-.*\.tar$/.test(f) && path.join(cacheDir, f) !== tarFile) fs.rmSync(path.join(cacheDir, f));
  return { tar: tarFile, built: true, seconds: (Date.now() - started) / 1000 };
}

/** Unpacks the cached system into `dir` (owners, modes, xattrs and ACLs as built). */
export async function extractSystem(tarFile: string, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await runLogged(
    'tar',
    ['--extract', '--file', tarFile, '--preserve-permissions', ...tarOptions, '-C', dir],
    {
      timeLimitMs: 10 * 60_000,
      what: 'unpacking the cached test system (tar)',
    },
  );
}

export const MARKER = 'AMIBUNDLE-BOOT-OK';

const markerScript = `#!/bin/sh
# amibundle boot test: report on the serial console that the system came up, then power off.
failed=$(systemctl list-units --state=failed --plain --no-legend | while read -r unit rest; do printf '%s ' "$unit"; done)
{
  echo "AMIBUNDLE-ROOT $(findmnt --noheadings --output SOURCE,FSTYPE,OPTIONS /)"
  echo "AMIBUNDLE-FAILED-UNITS [$failed]"
  echo "${MARKER} $(cat /etc/amibundle-boot-nonce)"
} > /dev/ttyS0
systemctl --no-block poweroff
`;

const markerUnit = `[Unit]
Description=amibundle boot test marker
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/amibundle-boot-marker

[Install]
WantedBy=multi-user.target
`;

/** Installs the marker unit (enabled) and writes this run's nonce, which only the disk holds. */
export function installBootMarker(root: string, nonce: string): void {
  fs.mkdirSync(path.join(root, 'usr/local/sbin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr/local/sbin/amibundle-boot-marker'), markerScript, { mode: 0o755 });
  fs.chmodSync(path.join(root, 'usr/local/sbin/amibundle-boot-marker'), 0o755);
  const unit = path.join(root, 'etc/systemd/system/amibundle-boot-marker.service');
  fs.writeFileSync(unit, markerUnit);
  const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
  fs.mkdirSync(wants, { recursive: true });
  fs.rmSync(path.join(wants, 'amibundle-boot-marker.service'), { force: true });
  fs.symlinkSync(
    '/etc/systemd/system/amibundle-boot-marker.service',
    path.join(wants, 'amibundle-boot-marker.service'),
  );
  fs.writeFileSync(path.join(root, 'etc/amibundle-boot-nonce'), `${nonce}\n`);
}

/** How the source system named its root (what bundle-vol must not carry into the image). */
export type SourceNaming = 'debootstrap' | 'nvme';

/**
 * `debootstrap`: the fstab debootstrap writes (no root entry), no GRUB configuration.
 * `nvme`: a system that was running from /dev/nvme0n1p1 with an EFI partition, as on a Nitro
 * instance: fstab root and /boot/efi, GRUB defaults and an old grub.cfg all name that disk.
 */
export function setSourceNaming(root: string, naming: SourceNaming): void {
  const fstab = path.join(root, 'etc/fstab');
  const defaults = path.join(root, 'etc/default/grub');
  const oldCfg = path.join(root, 'boot/grub/grub.cfg');
  if (naming === 'debootstrap') {
    fs.writeFileSync(fstab, '# UNCONFIGURED FSTAB FOR BASE SYSTEM\n');
    fs.rmSync(defaults, { force: true });
    fs.rmSync(path.join(root, 'boot/grub'), { recursive: true, force: true });
    return;
  }
  fs.writeFileSync(
    fstab,
    '# /etc/fstab: static file system information.\n' +
      '/dev/nvme0n1p1\t/\text4\terrors=remount-ro\t0\t1\n' +
      'UUID=7B3A-1C2D\t/boot/efi\tvfat\tumask=0077\t0\t1\n',
  );
  fs.mkdirSync(path.dirname(defaults), { recursive: true });
  fs.writeFileSync(
    defaults,
    'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=""\nGRUB_CMDLINE_LINUX="root=/dev/nvme0n1p1 net.ifnames=0"\n',
  );
  fs.mkdirSync(path.dirname(oldCfg), { recursive: true });
  fs.writeFileSync(
    oldCfg,
    "set root='hd0,msdos1'\nmenuentry 'Debian' {\n\tlinux /boot/vmlinuz root=/dev/nvme0n1p1 ro\n\tinitrd /boot/initrd.img\n}\n",
  );
}
