// Helpers for the bundle-vol tests (root, real loop mounts): a scratch area whose mounts and
// loop devices are always released, source file systems, a tree with every kind of file and
// metadata rsync must keep, and a comparison of two trees down to xattrs and hard-link identity.
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { parseMountInfo } from '../../src/volume/mountinfo.js';

export const isRoot = process.getuid?.() === 0;

export function sh(cmd: string, args: readonly string[], input?: string): string {
  return execFileSync(cmd, [...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** A scratch directory; release() unmounts everything below it and detaches its loop devices. */
export class Scratch {
  readonly dir: string;
  constructor(label: string) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `amibundle-voltest-${label}-`));
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /** Mounts below the scratch directory, deepest first. */
  mountsBelow(): string[] {
    return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
      .map((m) => m.mountPoint)
      .filter((p) => p.startsWith(`${this.dir}/`))
      .sort((a, b) => b.length - a.length);
  }

  /** Loop devices whose backing file is below the scratch directory. */
  loopsBelow(): string[] {
    return loopDevices()
      .filter((l) => l.file.startsWith(`${this.dir}/`))
      .map((l) => l.device);
  }

  release(): void {
    for (let round = 0; round < 3; round++) {
      for (const m of this.mountsBelow())
        if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['--lazy', m]);
      for (const l of this.loopsBelow()) spawnSync('losetup', ['--detach', l]);
      if (this.mountsBelow().length === 0 && this.loopsBelow().length === 0) break;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function loopDevices(): { device: string; file: string }[] {
  const r = spawnSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], {
    encoding: 'utf8',
  });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => /^(\S+)\s+(.*?)\s*$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ device: m[1]!, file: m[2]!.replace(/ \(deleted\)$/, '') }));
}

/** bundle-vol's private directories in the temporary directory (left behind = a clean-up bug). */
export function workDirs(tmp: string = os.tmpdir()): string[] {
  return fs.readdirSync(tmp).filter((n) => n.startsWith('amibundle-vol-'));
}

/** True when this kernel can mount `type` (loading its module if need be). */
export function hasFs(type: string): boolean {
  spawnSync('modprobe', [type], { stdio: 'ignore' });
  return fs
    .readFileSync('/proc/filesystems', 'utf8')
    .split('\n')
    .some((l) => l.split('\t').pop() === type);
}

/** Makes a file system in a sparse file and mounts it at `mountPoint`. */
export function makeSourceFs(
  scratch: Scratch,
  name: string,
  type: 'ext4' | 'xfs' | 'vfat' | 'ext2',
  sizeMiB: number,
  mountPoint: string,
  opts: { label?: string; uuid?: string } = {},
): { image: string; device: string } {
  const image = scratch.path(`${name}.fs`);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  const device = sh('losetup', ['--find', '--show', image]).trim();
  if (type === 'xfs')
    sh('mkfs.xfs', [
      '-q',
      ...(opts.label ? ['-L', opts.label] : []),
      ...(opts.uuid ? ['-m', `uuid=${opts.uuid}`] : []),
      device,
    ]);
  else if (type === 'vfat') sh('mkfs.vfat', [...(opts.label ? ['-n', opts.label] : []), device]);
  else
    sh('mke2fs', [
      '-q',
      '-t',
      type,
      ...(opts.label ? ['-L', opts.label] : []),
      ...(opts.uuid ? ['-U', opts.uuid] : []),
      device,
    ]);
  fs.mkdirSync(mountPoint, { recursive: true });
  sh('mount', [device, mountPoint]);
  return { image, device };
}

export interface RichTree {
  /** Volume paths that must not be in the image. */
  readonly absent: string[];
  /** Volume paths of directories that must be in the image, empty (mount points). */
  readonly emptied: string[];
  readonly keyFile: string;
  readonly certFile: string;
}

const T1 = new Date('2001-02-03T04:05:06.789Z');
const T2 = new Date('2019-12-31T23:59:58.123Z');

/**
 * Fills `root` with what a faithful copy must keep: every file type, hard links, ACLs, user,
 * trusted and security xattrs, a file capability, a sparse file, odd names, top-level dot-files,
 * set-id bits, foreign owners and old times; plus things that must be left out.
 */
export function fillRichTree(root: string): RichTree {
  const p = (rel: string): string => path.join(root, rel);
  const file = (rel: string, content: string | Buffer, mode = 0o644): void => {
    fs.mkdirSync(path.dirname(p(rel)), { recursive: true });
    fs.writeFileSync(p(rel), content);
    fs.chmodSync(p(rel), mode);
  };
  file('etc/hostname', 'source-host\n');
  file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  fs.chownSync(p('etc/shadow'), 0, 42);
  file('.autorelabel', '');
  file('.dotdir/inner', 'dot\n');
  file('usr/bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  file('usr/bin/suid', 'x', 0o4755);
  file('usr/bin/sgid', 'x', 0o2711);
  fs.mkdirSync(p('srv/sticky'), { recursive: true });
  fs.chmodSync(p('srv/sticky'), 0o1777);
  file('home/alice/notes.txt', 'alice\n', 0o600);
  fs.chownSync(p('home/alice/notes.txt'), 1234, 2345);
  fs.chownSync(p('home/alice'), 1234, 2345);

  // Hard links: within a directory and across directories.
  file('data/original', 'linked content\n');
  fs.linkSync(p('data/original'), p('data/same-dir-link'));
  fs.mkdirSync(p('data/other'), { recursive: true });
  fs.linkSync(p('data/original'), p('data/other/cross-dir-link'));
  file('data/pair-a', 'pair\n');
  fs.linkSync(p('data/pair-a'), p('data/pair-b'));

  // ACLs: an access ACL on a file and a default ACL on a directory.
  file('data/acl-file', 'acl\n');
  sh('setfacl', ['-m', 'u:1234:rwx,g:2345:r', p('data/acl-file')]);
  fs.mkdirSync(p('data/acl-dir'));
  sh('setfacl', ['-d', '-m', 'u:1234:rx', p('data/acl-dir')]);

  // Extended attributes in the user, trusted and security namespaces (an SELinux label).
  file('data/xattr-file', 'xattr\n');
  sh('setfattr', ['-n', 'user.comment', '-v', 'hello world', p('data/xattr-file')]);
  sh('setfattr', ['-n', 'user.binary', '-v', '0x00ff10', p('data/xattr-file')]);
  sh('setfattr', ['-n', 'trusted.note', '-v', 'trusted', p('data/xattr-file')]);
  sh('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:etc_t:s0', p('data/xattr-file')]);
  sh('setfattr', ['-n', 'security.selinux', '-v', 'system_u:object_r:usr_t:s0', p('usr/bin')]);

  // A file capability (set after chown, which would clear it).
  fs.copyFileSync('/bin/true', p('usr/bin/ping'));
  fs.chownSync(p('usr/bin/ping'), 0, 0);
  fs.chmodSync(p('usr/bin/ping'), 0o755);
  sh('setcap', ['cap_net_raw+ep', p('usr/bin/ping')]);

  // A sparse file: 64 MiB with two small data islands.
  fs.mkdirSync(p('var/lib'), { recursive: true });
  fs.writeFileSync(p('var/lib/sparse.img'), '');
  const sfd = fs.openSync(p('var/lib/sparse.img'), 'r+');
  fs.writeSync(sfd, Buffer.alloc(4096, 0x41), 0, 4096, 0);
  fs.writeSync(sfd, Buffer.alloc(4096, 0x42), 0, 4096, 32 * 1024 * 1024);
  fs.ftruncateSync(sfd, 64 * 1024 * 1024);
  fs.closeSync(sfd);

  // Special files.
  sh('mkfifo', [p('data/fifo')]);
  sh('mknod', ['-m', '640', p('data/chardev'), 'c', '1', '7']);
  sh('mknod', ['-m', '600', p('data/blockdev'), 'b', '7', '250']);

  // Symlinks: absolute, relative, dangling, and one whose owner differs.
  fs.symlinkSync('/etc/hostname', p('data/abs-link'));
  fs.symlinkSync('../etc/hostname', p('data/rel-link'));
  fs.symlinkSync('/nonexistent/target', p('data/dangling-link'));
  fs.lchownSync(p('data/rel-link'), 1234, 2345);

  // Awkward names: long, non-ASCII, not UTF-8 at all, rsync pattern characters, spaces, dashes.
  file(`names/${'L'.repeat(255)}`, 'long name\n');
  file('names/naïve-файл-日本語.txt', 'unicode\n');
  fs.writeFileSync(
    Buffer.concat([Buffer.from(p('names/')), Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0xe9])]),
    'latin1\n',
  );
  file('names/star*[x]?.txt', 'pattern chars\n');
  file('names/with space and\ttab', 'spaces\n');
  file('names/-leading-dash', 'dash\n');
  let deep = 'deep';
  for (let i = 0; i < 20; i++) deep += `/level-${i}-${'d'.repeat(40)}`;
  file(`${deep}/bottom`, 'deep\n');

  // Things the security filter withholds, and a trust store it must keep.
  file('root/.ssh/id_rsa', 'PRIVATE\n', 0o600);
  file('root/.ssh/id_ed25519', 'PRIVATE\n', 0o600);
  file('root/.ssh/authorized_keys', 'ssh-rsa AAAA\n', 0o600);
  file('root/.bash_history', 'history\n', 0o600);
  file('etc/ssl/private/server.pem', 'KEY\n', 0o600);
  file('etc/ssl/certs/ca-cert.pem', 'CERT\n');
  file('usr/share/keyrings/archive-keyring.gpg', 'PUBLIC KEYRING\n');
  file('root/private.gpg', 'SECRET KEYRING\n', 0o600);
  file('home/alice/.vimrc.swp', 'swap\n');

  // Run-time directories: kept as empty mount points.
  const emptied = ['/proc', '/sys', '/run', '/mnt', '/media', '/tmp', '/var/tmp'];
  for (const d of emptied) file(`${d.slice(1)}/junk`, 'must not be copied\n');
  fs.chmodSync(p('tmp'), 0o1777);
  file('dev/junk-node', 'not copied\n');

  // The signing key and certificate where Packer uploads them (the volume's /tmp) and elsewhere.
  file('tmp/pk-packer.pem', 'PACKER KEY\n', 0o600);
  file('tmp/cert-packer.pem', 'PACKER CERT\n', 0o600);
  file('opt/keys/signing-key', 'SIGNING KEY\n', 0o600);
  file('opt/keys/signing-cert', 'SIGNING CERT\n', 0o600);

  // Times last, deepest first, so creating children does not touch them again.
  const all: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(p(rel), { withFileTypes: true })) {
      const child = path.join(rel, e.name);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(child);
      all.push(child);
    }
  };
  walk('.');
  for (const rel of all) {
    const when = rel.length % 2 === 0 ? T1 : T2;
    try {
      fs.lutimesSync(p(rel), when, when);
    } catch {
      /* fifos and devices take times too; anything that refuses is compared as found */
    }
  }
  fs.utimesSync(root, T2, T2);

  return {
    absent: [
      '/proc/junk',
      '/sys/junk',
      '/run/junk',
      '/mnt/junk',
      '/media/junk',
      '/tmp/junk',
      '/var/tmp/junk',
      '/dev/junk-node',
      '/tmp/pk-packer.pem',
      '/tmp/cert-packer.pem',
      '/opt/keys/signing-key',
      '/opt/keys/signing-cert',
    ],
    emptied,
    keyFile: p('opt/keys/signing-key'),
    certFile: p('opt/keys/signing-cert'),
  };
}

export interface Entry {
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly rdev: number;
  readonly ino: bigint;
  readonly nlink: number;
  readonly blocks: number;
  readonly link?: string;
  readonly sha256?: string;
}

function typeOf(st: fs.BigIntStats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isSocket()) return 'socket';
  return 'other';
}

/** Every path below `root` (as latin1 strings, so names that are not UTF-8 survive), with its facts. */
export function scanTree(root: string, skip: (rel: string) => boolean = () => false): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const rootBuf = Buffer.from(root);
  const walk = (relBuf: Buffer): void => {
    const abs = Buffer.concat([rootBuf, relBuf]);
    for (const name of fs.readdirSync(abs, { encoding: 'buffer' })) {
      const childRel = Buffer.concat([relBuf, Buffer.from('/'), name]);
      const rel = childRel.toString('latin1');
      if (skip(rel)) continue;
      const childAbs = Buffer.concat([rootBuf, childRel]);
      const st = fs.lstatSync(childAbs, { bigint: true });
      const e: Entry = {
        type: typeOf(st),
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: st.isFile() || st.isSymbolicLink() ? Number(st.size) : 0,
        mtimeNs: st.mtimeNs,
        rdev: Number(st.rdev),
        ino: st.ino,
        nlink: Number(st.nlink),
        blocks: Number(st.blocks),
        ...(st.isSymbolicLink()
          ? { link: fs.readlinkSync(childAbs, { encoding: 'buffer' }).toString('latin1') }
          : {}),
        ...(st.isFile()
          ? { sha256: crypto.createHash('sha256').update(fs.readFileSync(childAbs)).digest('hex') }
          : {}),
      };
      out.set(rel, e);
      if (st.isDirectory()) walk(childRel);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

/** All xattrs (user, trusted, security, and ACLs as system.posix_acl_*) of every path, via getfattr. */
export function xattrsOf(root: string): Map<string, Map<string, string>> {
  const r = spawnSync(
    'getfattr',
    ['--recursive', '--physical', '--dump', '--match=-', '--encoding=hex', '--absolute-names', root],
    {
      encoding: 'latin1',
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of r.stdout.split('\n')) {
    const f = /^# file: (.*)$/.exec(line);
    if (f) {
      // getfattr escapes unusual bytes as octal.
      const name = f[1]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      const rel = name === root ? '/' : name.slice(root.length);
      current = new Map();
      out.set(rel, current);
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (kv && current) current.set(kv[1]!, kv[2]!);
  }
  return out;
}

/** Groups of paths sharing an inode (hard links), as sorted lists, for comparing identity. */
export function linkGroups(tree: Map<string, Entry>): string[][] {
  const byIno = new Map<bigint, string[]>();
  for (const [rel, e] of tree) {
    if (e.type === 'dir' || e.nlink < 2) continue;
    const list = byIno.get(e.ino) ?? [];
    list.push(rel);
    byIno.set(e.ino, list);
  }
  return [...byIno.values()].map((l) => l.sort()).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Paths of a rich tree that bundle-vol leaves out whatever the options (run-time state, keys). */
export function richTreeLeftOut(tree: RichTree, rel: string): boolean {
  return (
    rel === '/lost+found' ||
    rel.startsWith('/dev/') ||
    tree.emptied.some((d) => rel.startsWith(`${d}/`)) ||
    rel === '/opt/keys/signing-key' ||
    rel === '/opt/keys/signing-cert'
  );
}

/**
 * The image tree at `mnt` holds exactly the source's paths (less `skip`) with the same type, mode,
 * owner, size, content, link target, device number, modification time (except directories in
 * `changedDirs` and /etc/fstab's content, which bundle-vol rewrites), xattrs and hard links.
 */
export function expectFaithfulCopy(
  src: string,
  mnt: string,
  skip: (rel: string) => boolean,
  changedDirs: ReadonlySet<string> = new Set(['/etc', '/dev']),
): { after: Map<string, Entry>; xattrs: Map<string, Map<string, string>> } {
  const before = scanTree(src, skip);
  const after = scanTree(mnt, (rel) => rel === '/lost+found' || rel.startsWith('/dev/'));
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  for (const [rel, want] of before) {
    const got = after.get(rel)!;
    expect({ rel, type: got.type, mode: got.mode, uid: got.uid, gid: got.gid }).toEqual({
      rel,
      type: want.type,
      mode: want.mode,
      uid: want.uid,
      gid: want.gid,
    });
    if (rel === '/etc/fstab') continue;
    expect({ rel, size: got.size, sha256: got.sha256, link: got.link, rdev: got.rdev }).toEqual({
      rel,
      size: want.size,
      sha256: want.sha256,
      link: want.link,
      rdev: want.rdev,
    });
    if (want.type !== 'symlink' && !changedDirs.has(rel))
      expect({ rel, mtime: got.mtimeNs }).toEqual({ rel, mtime: want.mtimeNs });
  }
  expect(linkGroups(after)).toEqual(linkGroups(before));
  const xa = xattrsOf(src);
  const xb = xattrsOf(mnt);
  let compared = 0;
  for (const rel of before.keys()) {
    const want = Object.fromEntries(xa.get(rel) ?? []);
    const got = Object.fromEntries(xb.get(rel) ?? []);
    expect({ rel, xattrs: got }).toEqual({ rel, xattrs: want });
    compared += Object.keys(want).length;
  }
  // The tree has ACLs, user, trusted and security xattrs: a comparison of nothing proves nothing.
  expect(compared).toBeGreaterThanOrEqual(8);
  return { after, xattrs: xb };
}
