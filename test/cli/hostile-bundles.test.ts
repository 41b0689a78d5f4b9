// Hostile or broken bundles are refused by ec2-unbundle with one clear line and exit 254, and
// nothing is written into the destination or anywhere else.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/format/manifest.js';
import type { MemberInfo } from '../../src/format/tar-header.js';
import { runCli } from '../support/cli.js';
import {
  craftBundle,
  tarOfMembers,
  unbundleCrafted,
  wrappingAttack,
  type CraftOptions,
} from '../support/craft-bundle.js';
import { keysDir, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('hostile');
});
afterAll(() => tmp.remove());

const file = (name: string, size = 1024): MemberInfo => ({ name, mode: 0o644, mtime: 1400000000, size });

async function expectRefused(
  label: string,
  tar: Buffer,
  message: RegExp,
  opts: CraftOptions & { code?: number; mutate?: (bundleDir: string) => void } = {},
): Promise<void> {
  const work = fs.mkdtempSync(path.join(tmp.dir, `${label}-`));
  const { r, dest } = await unbundleCrafted(work, tar, opts);
  expect(r.code, r.stderr).toBe(opts.code ?? 254);
  expect(r.stderr).toMatch(/^ERROR: /);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(fs.readdirSync(dest)).toEqual([]);
  expect(fs.readdirSync(work).sort()).toEqual(['bundle', 'dest']);
}

const good = tarOfMembers([{ info: file('img') }]);

describe('unbundle refuses hostile part names', () => {
  it('a part name with a slash', () =>
    expectRefused('slash', good, /part file name 'sub\/img\.part\.0' is not a plain file name/, {
      partNames: () => 'sub/img.part.0',
    }));
  it('a part name with a backslash', () =>
    expectRefused('backslash', good, /not a plain file name/, { partNames: () => 'x\\img.part.0' }));
  it('a part name of ..', () =>
    expectRefused('dotdot', good, /not a plain file name/, { partNames: () => '..' }));
});

describe('unbundle refuses hostile tar members', () => {
  it('a member with a path', () =>
    expectRefused('path', tarOfMembers([{ info: file('dir/img') }]), /tar member 'dir\/img' has a path/));
  it('an absolute member name', () =>
    expectRefused('abs', tarOfMembers([{ info: file('/etc/img') }]), /has a path/));
  it('a member escaping with ..', () =>
    expectRefused('escape', tarOfMembers([{ info: file('../escape') }]), /has a path/));
  it('a member named ..', () =>
    expectRefused('dots', tarOfMembers([{ info: file('..') }]), /is not a file name/));
  for (const [flag, what] of [
    ['1', 'a hard link'],
    ['2', 'a symbolic link'],
    ['3', 'a character device'],
    ['4', 'a block device'],
    ['5', 'a directory'],
    ['6', 'a fifo'],
  ] as const)
    it(`a member that is ${what}`, () =>
      expectRefused(
        `type${flag}`,
        tarOfMembers([{ info: file('img', 0), typeflag: flag }]),
        new RegExp(`holds ${what}`),
        {
          size: 0,
        },
      ));
  it('two members', () =>
    expectRefused(
      'two',
      tarOfMembers([{ info: file('img') }, { info: file('img2') }]),
      /more than one file/,
    ));
  it('a truncated tar stream', () =>
    expectRefused(
      'trunc',
      tarOfMembers([{ info: file('img') }], false),
      /truncated \(no end-of-archive marker\)/,
    ));
  it('data after the end of the archive', () =>
    expectRefused(
      'extra',
      Buffer.concat([good, Buffer.from('extra data')]),
      /unexpected data after the end/,
    ));
});

describe('unbundle refuses bundles that disagree with their manifest', () => {
  it('image size', () => expectRefused('size', good, /1024 bytes but the manifest says 999/, { size: 999 }));
  it('digest', () =>
    expectRefused('digest', good, /invalid digest, expected 0{40} received [0-9a-f]{40}/, {
      digest: '0'.repeat(40),
    }));
  it('bundled_size', () =>
    expectRefused('bsize', good, /bundled_size/, {
      editModel: (m: Manifest) => ({ ...m, image: { ...m.image, bundledSize: m.image.bundledSize + 16 } }),
    }));
  it('parts count attribute', () =>
    expectRefused('count', good, /parts count='2' but 1 parts are listed/, {
      editManifest: (xml) => xml.replace("<parts count='1'>", "<parts count='2'>"),
    }));
  it('a gap in part indices', () =>
    expectRefused('gap', good, /part indices must run/, {
      editManifest: (xml) => xml.replace("<part index='0'>", "<part index='1'>"),
    }));
  it('a corrupted part', () =>
    expectRefused('corrupt', good, /part img\.part\.0 is corrupt: SHA-1/, {
      mutate: (dir) => {
        const p = path.join(dir, 'img.part.0');
        const b = fs.readFileSync(p);
        b[5] = b[5]! ^ 0xff;
        fs.writeFileSync(p, b);
      },
    }));
  it('a truncated part', () =>
    expectRefused('short', good, /is corrupt: SHA-1/, {
      mutate: (dir) => fs.truncateSync(path.join(dir, 'img.part.0'), 16),
    }));
  it('a missing part (exit 2)', () =>
    expectRefused('missing', good, /part file .*img\.part\.0 is missing/, {
      code: 2,
      mutate: (dir) => fs.rmSync(path.join(dir, 'img.part.0')),
    }));
  it('a manifest with a DTD and entities', () =>
    expectRefused('dtd', good, /DTD or entity declaration/, {
      editManifest: (xml) =>
        xml.replace("<?xml version='1.0'?>", "<?xml version='1.0'?><!DOCTYPE m [<!ENTITY x 'y'>]>"),
    }));
  it('a manifest that is not XML', () =>
    expectRefused('notxml', good, /not well-formed XML|not XML/, {
      editManifest: (xml) => xml.slice(0, 200),
    }));
});

describe("zstd bundles: the manifest's SHA-1 over the tar stream is what a restore trusts", () => {
  // zstd's own content checksum is not compared on restore (see codec/compression.ts): every byte
  // out of the decompressor goes through the SHA-1 that must equal the signed digest.
  const data = crypto.randomBytes(300 * 1024);
  const tar = tarOfMembers([{ info: file('img', data.length), data }]);
  const zstd = (): Buffer => execFileSync('zstd', ['-3', '-c', '-q'], { input: tar, maxBuffer: 1 << 26 });

  it('content changed where the stream still decodes (a byte of a raw block) is refused: invalid digest', () => {
    const bytes = zstd();
    // Random data is stored raw: its bytes appear verbatim in the frame.
    const at = bytes.indexOf(data.subarray(150_000, 150_032));
    expect(at).toBeGreaterThan(0);
    bytes[at]! ^= 0x01;
    return expectRefused('zstd-content', tar, /invalid digest, expected [0-9a-f]{40} received [0-9a-f]{40}/, {
      size: data.length,
      compressed: { compression: 'zstd', bytes },
    });
  });

  it('a wrong frame checksum over content that matches the signed digest restores the image exactly', async () => {
    const bytes = zstd();
    bytes[bytes.length - 1]! ^= 0x01;
    const work = fs.mkdtempSync(path.join(tmp.dir, 'zstd-sum-'));
    const { r, dest } = await unbundleCrafted(work, tar, {
      size: data.length,
      compressed: { compression: 'zstd', bytes },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'img')).equals(data)).toBe(true);
  });
});

describe('signature wrapping (issue 11): a signed pair hidden in the manifest, another image used', () => {
  /** An attacker's working bundle whose manifest carries the victim's signed nodes in a wrapper. */
  function wrappedBundle(label: string): { bundle: string; manifest: string; dest: string } {
    const work = fs.mkdtempSync(path.join(tmp.dir, `${label}-`));
    const victimDir = path.join(work, 'victim');
    const bundle = path.join(work, 'bundle');
    const dest = path.join(work, 'dest');
    for (const d of [victimDir, bundle, dest]) fs.mkdirSync(d);
    const victim = fs.readFileSync(craftBundle(victimDir, 'img', good), 'utf8');
    const evilTar = tarOfMembers([{ info: file('img'), data: Buffer.alloc(1024, 0x45) }]);
    const manifest = craftBundle(bundle, 'img', evilTar);
    fs.writeFileSync(manifest, wrappingAttack(victim, fs.readFileSync(manifest, 'utf8')));
    return { bundle, manifest, dest };
  }
  const cert = path.join(keysDir, 'user-cert.pem');

  it('verify -c refuses it (exit 254, one line)', async () => {
    const { manifest } = wrappedBundle('wrap-verify');
    const r = await runCli('amibundle', ['verify', '-m', manifest, '-c', cert]);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ERROR: .*unknown element <wrapper> under <manifest>/);
    expect(r.stdout).not.toMatch(/signature: (ok|verified)/);
  });

  it('unbundle --cert refuses it and writes nothing', async () => {
    const { bundle, manifest, dest } = wrappedBundle('wrap-unbundle');
    const r = await runCli('ec2-unbundle', [
      '-m',
      manifest,
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '--cert',
      cert,
      '-s',
      bundle,
      '-d',
      dest,
    ]);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown element <wrapper>/);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('migrate-manifest refuses it and changes nothing', async () => {
    const { manifest } = wrappedBundle('wrap-migrate');
    const before = fs.readFileSync(manifest);
    const r = await runCli('ec2-migrate-manifest', [
      '-m',
      manifest,
      '-c',
      cert,
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '--ec2cert',
      path.join(keysDir, 'ec2-cert.pem'),
      '--batch',
      '--no-mapping',
    ]);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ERROR: Bad manifest '.*': invalid manifest: unknown element <wrapper>/);
    expect(fs.readFileSync(manifest).equals(before)).toBe(true);
    expect(fs.existsSync(`${manifest}.bak`)).toBe(false);
  });
});

describe('names come from the signed manifest only', () => {
  it('parts named after anything but the manifest name are refused', async () => {
    for (const [label, name] of [
      ['profile', '.profile'],
      ['other', 'other.part.0'],
      ['keys', 'authorized_keys'],
      ['suffix', 'img.part.0x'],
      ['index', 'img.part.1'],
    ] as const)
      await expectRefused(`pn-${label}`, good, /invalid manifest: part 0 is named '.*', not img\.part\.0/, {
        partNames: () => name,
      });
  });

  it('the tar member must carry the manifest name: an existing file of the member name is left alone', async () => {
    const work = fs.mkdtempSync(path.join(tmp.dir, 'member-'));
    const { r, dest } = await unbundleCrafted(work, tarOfMembers([{ info: file('.bashrc') }]), {
      name: 'ubuntu',
      prepareDest: (d) => fs.writeFileSync(path.join(d, '.bashrc'), 'mine\n', { mode: 0o600 }),
    });
    expect(r.code).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^ERROR: the image in the bundle is named '\.bashrc' but the manifest names 'ubuntu'/,
    );
    expect(fs.readdirSync(dest)).toEqual(['.bashrc']);
    expect(fs.readFileSync(path.join(dest, '.bashrc'), 'utf8')).toBe('mine\n');
    expect(fs.statSync(path.join(dest, '.bashrc')).mode & 0o777).toBe(0o600);
  });

  it('an existing DEST/NAME that is a symbolic link is replaced, not written through, and it is said', async () => {
    const work = fs.mkdtempSync(path.join(tmp.dir, 'link-'));
    const target = path.join(work, 'elsewhere');
    fs.writeFileSync(target, 'do not touch\n');
    const { r, dest } = await unbundleCrafted(work, good, {
      prepareDest: (d) => fs.symlinkSync(target, path.join(d, 'img')),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(target, 'utf8')).toBe('do not touch\n');
    expect(fs.lstatSync(path.join(dest, 'img')).isFile()).toBe(true);
    expect(fs.statSync(path.join(dest, 'img')).size).toBe(1024);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Replaced the existing'))).toEqual([
      `Replaced the existing ${path.join(dest, 'img')} (a symbolic link: the link, not its target)`,
    ]);
  });
});

describe('control characters never reach the terminal', () => {
  const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
  for (const [label, from, to] of [
    ['ESC and BEL in the image name', '<name>img</name>', '<name>img\u001b[31m\u0007</name>'],
    [
      'ESC and BEL in a part name',
      '<filename>img.part.0</filename>',
      '<filename>img.part.0\u001b]0;x\u0007</filename>',
    ],
  ] as const)
    it(`${label}: refused by unbundle and verify, one escaped line`, async () => {
      const work = fs.mkdtempSync(path.join(tmp.dir, 'ctl-'));
      const manifest = craftBundle(work, 'img', good, { editManifest: (xml) => xml.replace(from, to) });
      expect(fs.readFileSync(manifest, 'utf8')).toContain('\u001b');
      for (const args of [
        ['ec2-unbundle', '-m', manifest, '-k', path.join(keysDir, 'user-key.pem'), '-s', work, '-d', work],
        ['amibundle', 'verify', '-m', manifest],
      ]) {
        const r = await runCli(args[0]!, args.slice(1));
        expect(r.code).toBe(254);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(/holds the control character U\+001B/);
        expect(r.stderr + r.stdout).not.toMatch(RAW);
      }
    });

  it('a file name with ESC and BEL from the command line is printed escaped', async () => {
    const missing = path.join(tmp.dir, 'no\u001b[2Jsuch\u0007.manifest.xml');
    const r = await runCli('amibundle', ['verify', '-m', missing]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.stderr).toContain('no\\x1b[2Jsuch\\x07.manifest.xml');
  });
});

describe('an existing DEST/NAME directory', () => {
  it('is refused before any work, and left alone', async () => {
    const work = fs.mkdtempSync(path.join(tmp.dir, 'dir-'));
    const { r, dest } = await unbundleCrafted(work, good, {
      prepareDest: (d) => {
        fs.mkdirSync(path.join(d, 'img'));
        fs.writeFileSync(path.join(d, 'img', 'keep'), 'x');
      },
    });
    expect(r.code).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/img is a directory; the image cannot replace it/);
    expect(fs.readdirSync(dest)).toEqual(['img']);
    expect(fs.readdirSync(path.join(dest, 'img'))).toEqual(['keep']);
  });
});
