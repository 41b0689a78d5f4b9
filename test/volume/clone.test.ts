// bundle-vol --clone-only as a user runs it (root, real loop mounts): a source file system full of
// awkward files is copied into an image, which is mounted read-only and compared with the source
// path by path: content, type, mode, owner, times, xattrs (ACLs, SELinux labels, capabilities)
// and hard-link identity; run-time directories come out empty, keys and filtered files absent.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import {
  expectFaithfulCopy,
  fillRichTree,
  hasFs,
  isRoot,
  linkGroups,
  loopDevices,
  makeSourceFs,
  richTreeLeftOut,
  Scratch,
  sh,
  workDirs,
  type RichTree,
} from './support.js';

/** vfat where the kernel has it (Debian's does); ext2 on minimal kernels without it. */
const efiType = hasFs('vfat') ? 'vfat' : 'ext2';
const SOURCE_UUID = '5d6ae8a4-4c1b-4b7e-9c2d-0123456789ab';
const SOURCE_LABEL = 'cloudimg-rootfs';

describe.skipIf(!isRoot)('bundle-vol --clone-only: a faithful image', () => {
  let scratch: Scratch;
  let src: string;
  let dest: string;
  let tree: RichTree;
  // bundle-vol's private work directories go here, so the test sees exactly its own.
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    scratch = new Scratch('clone');
    env = { TMPDIR: scratch.path('tmp') };
    fs.mkdirSync(env.TMPDIR!);
    src = scratch.path('src');
    dest = scratch.path('dest');
    fs.mkdirSync(dest);
    makeSourceFs(scratch, 'source', 'ext4', 512, src, { label: SOURCE_LABEL, uuid: SOURCE_UUID });
    tree = fillRichTree(src);
    fs.writeFileSync(
      path.join(src, 'etc/fstab'),
      '# the source system\n/dev/nvme0n1p1 / ext4 defaults,discard 0 1\nUUID=ABCD-1234 /boot/efi vfat umask=0077 0 1\n/dev/sdb /mnt auto defaults,nofail 0 2\n',
    );
    // An EFI partition below the volume (vfat; ext2 where this kernel has no vfat): its files are
    // merged into the image.
    makeSourceFs(scratch, 'efi', efiType, 33, path.join(src, 'boot/efi'));
    fs.mkdirSync(path.join(src, 'boot/efi/EFI/BOOT'), { recursive: true });
    fs.writeFileSync(path.join(src, 'boot/efi/EFI/BOOT/BOOTX64.EFI'), 'efi binary');
    // A tmpfs below the volume: not local, its files are left out, its directory stays.
    fs.mkdirSync(path.join(src, 'var/cache/volatile'), { recursive: true });
    sh('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', path.join(src, 'var/cache/volatile')]);
    fs.writeFileSync(path.join(src, 'var/cache/volatile/state'), 'volatile');
    // Things the user excludes: a directory, and files by pattern.
    fs.mkdirSync(path.join(src, 'var/log/big'), { recursive: true });
    fs.writeFileSync(path.join(src, 'var/log/big/huge.log'), 'big');
    fs.writeFileSync(path.join(src, 'srv/a.log'), 'log');
    fs.writeFileSync(path.join(src, 'srv/keep.txt'), 'keep');
  });

  afterAll(() => scratch?.release());

  /** Mounts the image read-only for `check`, and always unmounts it (detaching its loop device). */
  async function withImage(
    image: string,
    at: string,
    check: () => void | Promise<void>,
    nouuid = false,
  ): Promise<void> {
    fs.mkdirSync(at, { recursive: true });
    sh('mount', ['-o', `ro,loop${nouuid ? ',nouuid' : ''}`, image, at]);
    try {
      await check();
    } finally {
      sh('umount', [at]);
    }
  }

  it('copies everything exactly, with --no-filter, leaving out run-time state and the signing key', async () => {
    const image = path.join(dest, 'nofilter.img');
    const r = await runCli(
      'ec2-bundle-vol',
      [
        '--clone-only',
        '--batch',
        '-v',
        src,
        '-d',
        dest,
        '-p',
        'nofilter.img',
        '-k',
        tree.keyFile,
        '-c',
        tree.certFile,
        '--no-filter',
        '-e',
        '/var/log/big,/srv/*.log',
        // What a shell makes of Packer's `-e /tmp/*`: the first path after -e, the rest as arguments.
        '-e',
        path.join(src, 'tmp/pk-packer.pem'),
        path.join(src, 'tmp/cert-packer.pem'),
        path.join(src, 'tmp/junk'),
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Image file created: ${image}`);
    expect(r.stdout).toContain('ec2-bundle-vol complete.');
    // A loop device is a whole disk: a bare file system, and bundle-vol says what that means.
    expect(r.stdout).toContain('cannot boot as HVM');
    expect(r.stdout).toContain(`/boot/efi (${efiType}`);
    expect(r.stdout).toMatch(/\/var\/cache\/volatile \(tmpfs\) is not a local file system/);
    expect(r.stderr).not.toMatch(/could not be copied/);

    // File system identity replicated; sparse image.
    const id = sh('blkid', ['-p', '-o', 'export', image]);
    expect(id).toContain('TYPE=ext4');
    expect(id).toContain(`UUID=${SOURCE_UUID}`);
    expect(id).toContain(`LABEL=${SOURCE_LABEL}`);
    const st = fs.statSync(image);
    expect(st.blocks * 512).toBeLessThan(st.size / 2);
    expect(st.mode & 0o777).toBe(0o600);

    const mnt = scratch.path('mnt-nofilter');
    await withImage(image, mnt, () => {
      const skip = (rel: string): boolean =>
        richTreeLeftOut(tree, rel) ||
        rel === '/boot/efi/lost+found' ||
        rel.startsWith('/var/log/big') ||
        rel.startsWith('/var/cache/volatile/') ||
        rel === '/srv/a.log';
      // Every time is compared, directories' included (rsync-copy.ts re-applies those in a last pass).
      const { after, xattrs: xb } = expectFaithfulCopy(src, mnt, skip);
      expect(linkGroups(after)).toContainEqual([
        '/data/original',
        '/data/other/cross-dir-link',
        '/data/same-dir-link',
      ]);
      expect(Object.keys(Object.fromEntries(xb.get('/usr/bin/ping') ?? []))).toContain('security.capability');
      expect(Object.keys(Object.fromEntries(xb.get('/data/xattr-file') ?? []))).toEqual(
        expect.arrayContaining(['security.selinux', 'trusted.note', 'user.comment', 'user.binary']),
      );
      expect(sh('getfacl', ['-n', '-p', path.join(mnt, 'data/acl-file')])).toContain('user:1234:rwx');
      expect(sh('getfacl', ['-n', '-p', path.join(mnt, 'data/acl-dir')])).toContain('default:user:1234:r-x');
      expect(sh('getcap', [path.join(mnt, 'usr/bin/ping')])).toContain('cap_net_raw');
      // The sparse file is still sparse.
      const sparse = fs.statSync(path.join(mnt, 'var/lib/sparse.img'));
      expect(sparse.size).toBe(64 * 1024 * 1024);
      expect(sparse.blocks * 512).toBeLessThan(1024 * 1024);
      // Top-level dot-files are copied.
      expect(fs.readFileSync(path.join(mnt, '.dotdir/inner'), 'utf8')).toBe('dot\n');
      expect(fs.existsSync(path.join(mnt, '.autorelabel'))).toBe(true);

      // Left out: run-time state (directories kept, empty), keys (always), user excludes.
      for (const rel of tree.absent) expect(fs.existsSync(path.join(mnt, rel)), rel).toBe(false);
      for (const d of tree.emptied) expect(fs.readdirSync(path.join(mnt, d)), d).toEqual([]);
      expect(fs.statSync(path.join(mnt, 'tmp')).mode & 0o7777).toBe(0o1777);
      expect(fs.readdirSync(path.join(mnt, 'dev')).sort()).toEqual(['console', 'null', 'tty', 'zero']);
      expect(fs.readdirSync(path.join(mnt, 'var/cache/volatile'))).toEqual([]);
      expect(fs.existsSync(path.join(mnt, 'var/log/big'))).toBe(false);
      expect(fs.existsSync(path.join(mnt, 'srv/a.log'))).toBe(false);
      expect(fs.existsSync(path.join(mnt, 'srv/keep.txt'))).toBe(true);
      // --no-filter: what the filter would withhold is there.
      expect(fs.existsSync(path.join(mnt, 'root/.ssh/id_rsa'))).toBe(true);
      expect(fs.existsSync(path.join(mnt, 'etc/ssl/private/server.pem'))).toBe(true);
      // The vfat EFI partition's files are in the root file system.
      expect(fs.readFileSync(path.join(mnt, 'boot/efi/EFI/BOOT/BOOTX64.EFI'), 'utf8')).toBe('efi binary');

      // fstab: root by UUID, the merged EFI entry commented out, the ephemeral disk kept.
      const fstab = fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8');
      expect(fstab).toMatch(new RegExp(`^UUID=${SOURCE_UUID}\\s+/\\s+ext4\\s+defaults,discard`, 'm'));
      expect(fstab).toMatch(/^# amibundle: merged into the root file system: UUID=ABCD-1234 \/boot\/efi/m);
      expect(fstab).toMatch(/^\/dev\/sdb \/mnt auto defaults,nofail 0 2$/m);
      expect(fstab).not.toMatch(/^\/dev\/nvme0n1p1/m);
    });
  });

  it('applies the security filter, keeps trust stores, and names every excluded path under --debug', async () => {
    const image = path.join(dest, 'filtered.img');
    const r = await runCli(
      'amibundle',
      [
        'bundle-vol',
        '--clone-only',
        '--batch',
        '--debug',
        '-v',
        src,
        '-d',
        dest,
        '-p',
        'filtered.img',
        '-k',
        tree.keyFile,
        '-c',
        tree.certFile,
        '-i',
        '/root/.bash_history',
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/The security filter left out \d+ files/);
    expect(r.stdout).toContain('Left out the signing key and certificate');
    expect(r.stderr).toContain('excluded (filter rule *id_rsa*): /root/.ssh/id_rsa');
    expect(r.stderr).toContain('excluded (key rule /opt/keys/signing-key): /opt/keys/signing-key');
    expect(r.stderr).toContain('excluded (system rule /proc/*): /proc/junk');

    const mnt = scratch.path('mnt-filtered');
    await withImage(image, mnt, () => {
      for (const rel of [
        'root/.ssh/id_rsa',
        'root/.ssh/id_ed25519',
        'root/.ssh/authorized_keys',
        'etc/ssl/private/server.pem',
        'root/private.gpg',
        'home/alice/.vimrc.swp',
      ])
        expect(fs.existsSync(path.join(mnt, rel)), rel).toBe(false);
      for (const rel of tree.absent) expect(fs.existsSync(path.join(mnt, rel)), rel).toBe(false);
      // -i re-includes; the system trust store survives the *.pem rule.
      expect(fs.readFileSync(path.join(mnt, 'root/.bash_history'), 'utf8')).toBe('history\n');
      expect(fs.readFileSync(path.join(mnt, 'etc/ssl/certs/ca-cert.pem'), 'utf8')).toBe('CERT\n');
      // Package keyrings are public keys: kept, or the instance cannot verify its archive.
      expect(fs.readFileSync(path.join(mnt, 'usr/share/keyrings/archive-keyring.gpg'), 'utf8')).toBe(
        'PUBLIC KEYRING\n',
      );
      expect(fs.existsSync(path.join(mnt, 'etc/hostname'))).toBe(true);
    });
  });

  it('makes an xfs image with the source label and UUID (set after the copy)', async () => {
    const xsrc = scratch.path('xsrc');
    const uuid = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
    makeSourceFs(scratch, 'xsource', 'xfs', 320, xsrc, { label: 'xfsroot', uuid });
    fs.mkdirSync(path.join(xsrc, 'etc'));
    fs.writeFileSync(path.join(xsrc, 'etc/os-release'), 'ID=test\n');
    fs.linkSync(path.join(xsrc, 'etc/os-release'), path.join(xsrc, 'etc/os-release.link'));
    sh('setfattr', [
      '-n',
      'security.selinux',
      '-v',
      'system_u:object_r:etc_t:s0',
      path.join(xsrc, 'etc/os-release'),
    ]);
    const image = path.join(dest, 'xfs.img');
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', xsrc, '-d', dest, '-p', 'xfs.img'],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    const id = sh('blkid', ['-p', '-o', 'export', image]);
    expect(id).toContain('TYPE=xfs');
    expect(id).toContain(`UUID=${uuid}`);
    expect(id).toContain('LABEL=xfsroot');
    const mnt = scratch.path('mnt-xfs');
    // nouuid: the source, with the same UUID, is still mounted.
    await withImage(
      image,
      mnt,
      () => {
        const a = fs.statSync(path.join(mnt, 'etc/os-release'));
        expect(a.nlink).toBe(2);
        expect(fs.statSync(path.join(mnt, 'etc/os-release.link')).ino).toBe(a.ino);
        expect(
          sh('getfattr', ['-n', 'security.selinux', '--only-values', path.join(mnt, 'etc/os-release')]),
        ).toBe('system_u:object_r:etc_t:s0');
      },
      true,
    );
  });

  it('reports what it could not preserve, by path and count, and asks before keeping such an image', async () => {
    // An 8000-byte xattr fits xfs but not an ext4 inode: rsync cannot set it in the image.
    const xsrc = scratch.path('bigxattr');
    makeSourceFs(scratch, 'bigxattr', 'xfs', 320, xsrc);
    fs.mkdirSync(path.join(xsrc, 'data'));
    fs.writeFileSync(path.join(xsrc, 'data/big'), 'content\n');
    sh('setfattr', ['-n', 'user.big', '-v', 'x'.repeat(8000), path.join(xsrc, 'data/big')]);
    fs.writeFileSync(path.join(xsrc, 'data/fine'), 'fine\n');
    const args = ['--clone-only', '-v', xsrc, '-d', dest, '--fs-type', 'ext4'];

    // Interactive, no answer (stdin at its end): the run stops and leaves nothing.
    const declined = await runCli('ec2-bundle-vol', [...args, '-p', 'declined.img'], { env });
    expect(declined.code).toBe(254);
    expect(declined.stderr).toMatch(/^WARNING: 1 item\(s\) could not be copied or preserved exactly:$/m);
    expect(declined.stderr).toMatch(
      /^WARNING: +\/data\/big: .*fsetxattr\("\/data\/big","user\.big"\).*No space left on device/m,
    );
    expect(declined.stderr).toMatch(/stopped: the copy was not exact/);
    expect(fs.existsSync(path.join(dest, 'declined.img'))).toBe(false);

    // --batch accepts, after the same report; the file is there, without the xattr.
    const image = path.join(dest, 'accepted.img');
    const accepted = await runCli('ec2-bundle-vol', [...args, '--batch', '-p', 'accepted.img'], { env });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(accepted.stderr).toMatch(/^WARNING: +\/data\/big: /m);
    const mnt = scratch.path('mnt-accepted');
    await withImage(image, mnt, () => {
      expect(fs.readFileSync(path.join(mnt, 'data/big'), 'utf8')).toBe('content\n');
      expect(fs.readFileSync(path.join(mnt, 'data/fine'), 'utf8')).toBe('fine\n');
    });
  });

  it('leaves no mount, loop device, work directory or partial image behind', () => {
    const mine = loopDevices().filter((l) => l.file.startsWith(dest));
    expect(mine).toEqual([]);
    expect(fs.readdirSync(dest).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(workDirs(env.TMPDIR)).toEqual([]);
  });
});
