// What bundle-vol copies, as rsync filter rules: order (keys first, then includes, excludes,
// trust stores, the security filter), literal paths escaped, host paths made volume-relative,
// mounts below the volume merged or left out; and the rules' effect, checked with rsync itself.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  literalPattern,
  planCopy,
  rsyncFilterArgs,
  userPattern,
  type CopyPlanInput,
} from '../../src/volume/copy-rules.js';
import type { MountEntry } from '../../src/volume/mountinfo.js';
import { parseMountInfo } from '../../src/volume/mountinfo.js';

function mount(mountPoint: string, fsType: string, devNumber: string, root = '/'): MountEntry {
  return { id: 1, parentId: 0, devNumber, root, mountPoint, fsType, source: `/dev/${fsType}`, options: 'rw' };
}

const base: CopyPlanInput = {
  volume: '/',
  volumeDevNumber: '259:1',
  mountsBelow: [],
  all: false,
  filter: true,
  excludes: [],
  includes: [],
  secretFiles: [],
  imageFiles: ['/tmp/image'],
  destination: '/tmp',
  workDirs: ['/tmp/amibundle-vol-x'],
  swapFiles: [],
};

describe('planCopy', () => {
  it('puts the key and certificate first, so neither -i nor --no-filter brings them back', () => {
    const plan = planCopy({
      ...base,
      filter: false,
      secretFiles: ['/home/packer/pk.pem', '/home/packer/cert.pem'],
      includes: ['/home/packer/*'],
    });
    expect(plan.rules.slice(0, 3)).toEqual([
      { action: '-', pattern: '/home/packer/pk.pem', reason: 'key' },
      { action: '-', pattern: '/home/packer/cert.pem', reason: 'key' },
      { action: '+', pattern: '/home/packer/*', reason: 'include' },
    ]);
    expect(plan.rules.some((r) => r.reason === 'filter')).toBe(false);
  });

  it('keeps run-time directories as empty mount points and leaves out the image and its destination', () => {
    const plan = planCopy({
      ...base,
      imageFiles: ['/var/bundles/img', '/var/bundles/.img.partial'],
      destination: '/var/bundles',
    });
    const excluded = plan.rules.filter((r) => r.action === '-').map((r) => r.pattern);
    expect(excluded).toEqual(
      expect.arrayContaining([
        '/dev/*',
        '/proc/*',
        '/sys/*',
        '/run/*',
        '/mnt/*',
        '/media/*',
        '/tmp/*',
        '/var/tmp/*',
        '/lost+found',
      ]),
    );
    expect(excluded).toEqual(expect.arrayContaining(['/var/bundles/img', '/var/bundles/*']));
    expect(excluded).not.toContain('/var/bundles');
    // -d /tmp (Packer's) leaves the image its /tmp; swap files are left out.
    const tmp = planCopy({ ...base, swapFiles: ['/swapfile', '/tmp/swap2'] });
    expect(tmp.rules.filter((r) => r.pattern === '/tmp' || r.pattern.startsWith('/tmp/amibundle'))).toEqual(
      [],
    );
    expect(tmp.rules).toContainEqual({ action: '-', pattern: '/swapfile', reason: 'swap' });
  });

  it('merges local file systems below the volume, skips the others and bind mounts', () => {
    const plan = planCopy({
      ...base,
      mountsBelow: [
        mount('/proc', 'proc', '0:22'),
        mount('/boot', 'ext4', '259:2'),
        mount('/boot/efi', 'vfat', '259:3'),
        mount('/home', 'btrfs', '0:40'),
        mount('/srv/nfs', 'nfs4', '0:50'),
        mount('/snap/core/1', 'squashfs', '7:1'),
        mount('/var/lib/bound', 'ext4', '259:1', '/data'),
      ],
    });
    expect(plan.merged.map((m) => m.mountPoint)).toEqual(['/boot', '/boot/efi', '/home']);
    const excluded = plan.rules.filter((r) => r.action === '-').map((r) => r.pattern);
    expect(excluded).toEqual(
      expect.arrayContaining([
        '/srv/nfs/*',
        '/snap/core/1/*',
        '/var/lib/bound/*',
        '/boot/lost+found',
        '/boot/efi/lost+found',
      ]),
    );
    expect(plan.notes.join('\n')).toMatch(/\/srv\/nfs \(nfs4\) is not a local file system/);
    expect(plan.notes.join('\n')).toMatch(/\/var\/lib\/bound is a bind mount/);
    // With --all nothing below the volume is skipped.
    expect(
      planCopy({ ...base, all: true, mountsBelow: [mount('/srv/nfs', 'nfs4', '0:50')] }).merged,
    ).toHaveLength(1);
  });

  it('ends with the trust stores re-included, then the security filter', () => {
    const rules = planCopy(base).rules;
    const firstTrust = rules.findIndex((r) => r.reason === 'trust');
    const firstFilter = rules.findIndex((r) => r.reason === 'filter');
    expect(firstTrust).toBeGreaterThan(0);
    expect(firstFilter).toBeGreaterThan(firstTrust);
    expect(rules.slice(firstFilter).map((r) => r.pattern)).toEqual(
      expect.arrayContaining(['*.pem', '*id_rsa*', '*/.ssh/authorized_keys', '*/.bash_history']),
    );
  });

  it('renders one rsync --filter argument per rule', () => {
    expect(rsyncFilterArgs([{ action: '-', pattern: '/a b', reason: 'user' }])).toEqual(['--filter=- /a b']);
  });
});

describe('patterns', () => {
  let vol: string;
  beforeAll(() => {
    vol = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-rules-'));
    fs.mkdirSync(path.join(vol, 'tmp'));
    fs.writeFileSync(path.join(vol, 'tmp/key[1].pem'), 'k');
  });
  afterAll(() => fs.rmSync(vol, { recursive: true, force: true }));

  it('escapes wildcard characters only where rsync reads escapes', () => {
    expect(literalPattern('/plain/path')).toBe('/plain/path');
    expect(literalPattern('/a\\b')).toBe('/a\\b');
    expect(literalPattern('/a[1]*')).toBe('/a\\[1]\\*');
    expect(literalPattern('/a\\b', '/*')).toBe('/a\\\\b/*');
  });

  it('reads -e entries relative to the volume, host paths inside it too, existing paths literally', () => {
    expect(userPattern(vol, '/tmp/key[1].pem')).toEqual({ pattern: '/tmp/key\\[1].pem', literal: true });
    expect(userPattern(vol, path.join(vol, 'tmp/key[1].pem'))).toEqual({
      pattern: '/tmp/key\\[1].pem',
      literal: true,
    });
    expect(userPattern(vol, '/tmp/*')).toEqual({ pattern: '/tmp/*', literal: false });
    expect(userPattern(vol, 'cache')).toEqual({ pattern: 'cache', literal: false });
  });

  it('has the effect intended when rsync applies it', () => {
    const src = path.join(vol, 'src');
    const dst = path.join(vol, 'dst');
    for (const f of [
      'keep.txt',
      'a/id_rsa.pub',
      'home/u/.ssh/authorized_keys',
      'etc/ssl/certs/ca.pem',
      'etc/ssl/private/k.pem',
      'tmp/x',
      'odd[1]/f',
      'pk.pem',
    ]) {
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.writeFileSync(path.join(src, f), f);
    }
    const plan = planCopy({
      ...base,
      volume: src,
      volumeDevNumber: undefined,
      imageFiles: [],
      destination: vol,
      workDirs: [],
      secretFiles: [path.join(src, 'pk.pem')],
      includes: ['/pk.pem'],
      excludes: ['/odd[1]'],
    });
    execFileSync('rsync', ['-a', ...rsyncFilterArgs(plan.rules), `${src}/`, `${dst}/`]);
    const got: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else got.push(path.relative(dst, path.join(d, e.name)));
      }
    };
    walk(dst);
    expect(got.sort()).toEqual(['etc/ssl/certs/ca.pem', 'keep.txt']);
  });
});

describe('parseMountInfo', () => {
  it('decodes escaped mount points and finds the fields after the separator', () => {
    const text =
      '29 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n' +
      '40 29 0:35 /data /mnt/with\\040space rw shared:5 master:2 - btrfs /dev/sdb rw,subvol=/data\n';
    const [root, bind] = parseMountInfo(text);
    expect(root).toMatchObject({
      devNumber: '259:1',
      mountPoint: '/',
      fsType: 'ext4',
      source: '/dev/nvme0n1p1',
    });
    expect(bind).toMatchObject({
      root: '/data',
      mountPoint: '/mnt/with space',
      fsType: 'btrfs',
      source: '/dev/sdb',
    });
  });
});
