// GRUB 2 for BIOS (i386-pc) on a partitioned image. For `-v /` (the running system, trusted to
// run its own tools) the copied system's grub-install runs inside the image (chroot) when it has
// one. For `-v DIR` the tree is data, never run: this host's grub-install is used, with the
// tree's i386-pc modules when it has them (so the boot code matches the system), else the
// host's. grub-install embeds the core image in the MBR gap (mbr) or the BIOS boot partition
// (gpt); the configuration it reads is written here: it finds the root file system by UUID and
// boots the newest kernel under /boot with a serial console.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { AmiError } from '../errors.js';
import type { CleanupStack } from './cleanup-stack.js';
import { pathInImage } from './image-path.js';
import { bindSystemDirs } from './mounts.js';
import { onPath, runTool, ToolError } from '../io/run-tool.js';

/** Where GRUB's BIOS modules live in a system (Debian, Ubuntu, RHEL, Amazon Linux alike). */
export const GRUB_MODULES_DIR = 'usr/lib/grub/i386-pc';

export function hasGrubModules(root: string): boolean {
  return (
    fs.existsSync(pathInImage(root, `${GRUB_MODULES_DIR}/boot.img`)) &&
    fs.existsSync(pathInImage(root, `${GRUB_MODULES_DIR}/normal.mod`))
  );
}

export interface KernelFiles {
  /** Paths inside the image, e.g. `/boot/vmlinuz-6.1.0-13-cloud-amd64`. */
  readonly kernel: string;
  readonly initrd?: string;
  readonly version?: string;
}

/** Numeric-aware comparison so 6.10 sorts after 6.9. */
function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** The newest kernel in `root/boot` and its initrd (Debian, RHEL and SUSE names). */
export function findKernel(root: string): KernelFiles | undefined {
  const boot = pathInImage(root, 'boot');
  let names: string[];
  try {
    names = fs.readdirSync(boot);
  } catch {
    return undefined;
  }
  const versioned = names
    .map((n) => /^(?:vmlinuz|vmlinux|bzImage|kernel)-(.+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null && !/rescue|\.(old|bak|sig|hmac)$/.test(m[1]!))
    .sort((a, b) => compareVersions(b[1]!, a[1]!));
  const exists = (n: string): boolean => names.includes(n);
  const newest = versioned[0];
  if (newest) {
    const v = newest[1]!;
    const initrd = [`initrd.img-${v}`, `initramfs-${v}.img`, `initrd-${v}.img`, `initrd-${v}`].find(exists);
    return { kernel: `/boot/${newest[0]}`, ...(initrd ? { initrd: `/boot/${initrd}` } : {}), version: v };
  }
  const plain = ['vmlinuz', 'bzImage', 'vmlinux'].find(exists);
  if (!plain) return undefined;
  const initrd = ['initrd.img', 'initramfs.img', 'initrd'].find(exists);
  return { kernel: `/boot/${plain}`, ...(initrd ? { initrd: `/boot/${initrd}` } : {}) };
}

/** Value of `KEY=...` in a shell-style defaults file (quoted or not), or undefined. */
export function shellVariable(text: string, key: string): string | undefined {
  let value: string | undefined;
  const re = new RegExp(`^\\s*(?:export\\s+)?${key}=(?:"((?:[^"\\\\]|\\\\.)*)"|'([^']*)'|(\\S*))`, 'gm');
  for (const m of text.matchAll(re)) value = m[1]?.replace(/\\(.)/g, '$1') ?? m[2] ?? m[3] ?? '';
  return value;
}

/**
 * The kernel command line: the system's own GRUB_CMDLINE_LINUX(_DEFAULT) from /etc/default/grub,
 * with `root=` replaced by the file system's UUID and, unless turned off, the serial console
 * EC2 shows in "Get system log" (console=ttyS0) added when none is set.
 */
export function kernelCommandLine(root: string, uuid: string, serialConsole: boolean): string {
  let defaults = '';
  try {
    defaults = fs.readFileSync(pathInImage(root, 'etc/default/grub'), 'utf8');
  } catch {
    /* no defaults: the basic command line */
  }
  const words = [
    shellVariable(defaults, 'GRUB_CMDLINE_LINUX'),
    shellVariable(defaults, 'GRUB_CMDLINE_LINUX_DEFAULT'),
  ]
    .join(' ')
    .split(/\s+/)
    .filter((w) => w.length > 0 && !/^(root|ro|rw)(=|$)/.test(w));
  const args = [`root=UUID=${uuid}`, 'ro', ...words];
  if (serialConsole && !words.some((w) => w.startsWith('console=ttyS'))) {
    if (!words.includes('console=tty0')) args.push('console=tty0');
    args.push('console=ttyS0,115200n8');
  }
  return args.join(' ');
}

export interface GrubConfigInput {
  readonly uuid: string;
  readonly fsType: string;
  readonly scheme: 'mbr' | 'gpt';
  readonly kernel: KernelFiles;
  readonly cmdline: string;
  readonly serialConsole: boolean;
  readonly title: string;
}

export function grubConfig(c: GrubConfigInput): string {
  const lines = [
    '# GRUB 2 configuration written by amibundle bundle-vol. The root file system is found by',
    '# UUID, so the disk may be called xvda, sda or nvme0n1 on the instance. update-grub or',
    '# grub2-mkconfig on the instance replaces this file.',
    'set default=0',
    'set timeout=1',
  ];
  if (c.serialConsole)
    lines.push(
      'serial --unit=0 --speed=115200',
      'terminal_input serial console',
      'terminal_output serial console',
    );
  lines.push(
    `insmod ${c.scheme === 'gpt' ? 'part_gpt' : 'part_msdos'}`,
    `insmod ${c.fsType === 'xfs' ? 'xfs' : 'ext2'}`,
    `search --no-floppy --fs-uuid --set=root ${c.uuid}`,
    `menuentry '${c.title.replace(/'/g, '')}' {`,
    `\tlinux ${c.kernel.kernel} ${c.cmdline}`,
  );
  if (c.kernel.initrd) lines.push(`\tinitrd ${c.kernel.initrd}`);
  lines.push('}', '');
  return lines.join('\n');
}

/** The image's own grub-install, as a path inside the image, when it has one. */
export function imageGrubInstaller(root: string): string | undefined {
  for (const p of [
    'usr/sbin/grub-install',
    'usr/sbin/grub2-install',
    'sbin/grub-install',
    'sbin/grub2-install',
  ]) {
    try {
      if (fs.lstatSync(pathInImage(root, p))) return `/${p}`;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function hostGrubInstaller(): string | undefined {
  return ['grub-install', 'grub2-install'].find(onPath);
}

export interface GrubInstallInput {
  /** Mount point of the image's root file system. */
  readonly root: string;
  /**
   * The copied system is the running one (`-v /`): its own grub-install may run in a chroot.
   * False for `-v DIR`: nothing from the tree is executed.
   */
  readonly runImageTools: boolean;
  /** The whole-disk loop device. */
  readonly disk: string;
  readonly config: GrubConfigInput;
  /** `--grub-config`: the user's own configuration, used as is. */
  readonly userConfig?: string;
  readonly cleanup: CleanupStack;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

export interface GrubInstallResult {
  readonly installer: string;
  readonly configPath: string;
}

function failed(err: unknown): AmiError {
  return new AmiError(
    `installing GRUB failed: ${String(err).replace(/^AmiError: /, '')}`,
    undefined,
    "run with --debug to see grub-install's output",
  );
}

/** The host's BIOS modules, used when a `-v DIR` tree has none of its own. */
export const HOST_GRUB_MODULES = `/${GRUB_MODULES_DIR}`;

/** Where the modules for this host's grub-install come from: the image's, else the host's. */
export function grubModulesFor(root: string): string | undefined {
  if (hasGrubModules(root)) return pathInImage(root, GRUB_MODULES_DIR);
  if (hasGrubModules('/')) return HOST_GRUB_MODULES;
  return undefined;
}

export async function installGrub(g: GrubInstallInput): Promise<GrubInstallResult> {
  const { root, disk, out } = g;
  let installer = g.runImageTools ? imageGrubInstaller(root) : undefined;
  let grubDir = installer?.includes('grub2-') ? 'grub2' : 'grub';
  let used = '';
  if (installer) {
    const unbind = await bindSystemDirs(root, g.cleanup, out);
    try {
      await runTool('chroot', [root, installer, '--target=i386-pc', '--boot-directory=/boot', disk], {
        signal: g.signal,
        out,
        env: { ...process.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
        what: `the image's ${installer}`,
      });
      used = `the image's own ${installer}`;
    } catch (err) {
      const code = err instanceof ToolError ? err.result.code : undefined;
      // 126/127: it cannot run here (missing libraries, another architecture): use the host's.
      if (code !== 126 && code !== 127) throw failed(err);
      out?.info(
        `The image's ${installer} cannot run on this host; using this host's grub-install with the image's modules.`,
      );
      installer = undefined;
    } finally {
      await unbind();
    }
  }
  if (!installer) {
    const host = hostGrubInstaller();
    if (!host)
      throw new AmiError(
        g.runImageTools
          ? 'the image has no grub-install that runs here, and neither has this host'
          : "this host has no grub-install (a -v DIR tree's own programs are never run)",
        undefined,
        'install grub2-common and grub-pc-bin (Debian/Ubuntu) or grub2-tools (RHEL, Amazon Linux) on this host',
      );
    const modules = grubModulesFor(root);
    if (!modules)
      throw new AmiError(
        `neither the image nor this host has GRUB 2 for BIOS (${GRUB_MODULES_DIR})`,
        undefined,
        'install grub-pc-bin (Debian/Ubuntu) on this host',
      );
    grubDir = host === 'grub2-install' ? 'grub2' : 'grub';
    try {
      await runTool(
        host,
        ['--target=i386-pc', `--directory=${modules}`, `--boot-directory=${pathInImage(root, 'boot')}`, disk],
        { signal: g.signal, out, env: { ...process.env, LC_ALL: 'C' }, what: host },
      );
    } catch (err) {
      throw failed(err);
    }
    used = `this host's ${host} with ${modules === HOST_GRUB_MODULES ? "this host's" : "the image's"} modules`;
  }

  const configPath = `/boot/${grubDir}/grub.cfg`;
  const hostConfig = pathInImage(root, configPath);
  await fs.promises.mkdir(path.dirname(hostConfig), { recursive: true });
  if (fs.existsSync(hostConfig)) await fs.promises.rename(hostConfig, `${hostConfig}.amibundle-orig`);
  const text = g.userConfig ?? grubConfig(g.config);
  await fs.promises.writeFile(hostConfig, text, { mode: 0o644 });
  return { installer: used, configPath };
}
