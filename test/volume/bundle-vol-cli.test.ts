// ec2-bundle-vol end to end as Packer and people run it: the full bundle -> unbundle round trip,
// IMDSv2 inheritance into the manifest (against a local metadata server, never the real one),
// the IMDSv1 fallback, exit 12 when metadata is unreachable, concurrent runs, Ctrl-C clean-up,
// the fstab and script options, and the command-line mistakes refused before any work.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { runCli, type CliResult } from '../support/cli.js';
import { keysDir, projectRoot } from '../support/fixtures.js';
import { startImdsServer } from '../support/imds-server.js';
import {
  expectFaithfulCopy,
  fillRichTree,
  isRoot,
  loopDevices,
  makeSourceFs,
  richTreeLeftOut,
  Scratch,
  sh,
  workDirs,
  type RichTree,
} from './support.js';

const key = path.join(keysDir, 'user-key.pem');
const cert = path.join(keysDir, 'user-cert.pem');
const ec2cert = path.join(keysDir, 'ec2-cert.pem');
const signing = [
  '-k',
  key,
  '-c',
  cert,
  '-u',
  '1234-5678-9012',
  '--ec2cert',
  ec2cert,
  '-r',
  'x86_64',
  '--batch',
];

const instance: Record<string, string> = {
  'ami-id': 'ami-0a1b2c3d4e5f60718',
  'ancestor-ami-ids': 'ami-00000001',
  'kernel-id': 'aki-fc8f11cc',
  'ramdisk-id': 'ari-0a1b2c3d',
  'product-codes': 'abcdefghijklmnopqrstuvwx1',
  'block-device-mapping/': 'ami\nroot\nephemeral0',
  'block-device-mapping/ami': 'sda1',
  'block-device-mapping/root': '/dev/sda1',
  'block-device-mapping/ephemeral0': 'sdb',
};

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe.skipIf(!isRoot)('ec2-bundle-vol end to end', () => {
  let scratch: Scratch;
  let env: NodeJS.ProcessEnv;
  /** A small directory system tree, for the runs that test something other than fidelity. */
  let small: string;

  beforeAll(() => {
    scratch = new Scratch('cli');
    env = { TMPDIR: scratch.path('tmp') };
    fs.mkdirSync(env.TMPDIR!);
    small = scratch.path('small');
    fs.mkdirSync(path.join(small, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(small, 'etc/hostname'), 'small\n');
    fs.writeFileSync(path.join(small, 'etc/fstab'), 'LABEL=old-root / ext4 defaults 0 1\n');
  });
  afterAll(() => scratch?.release());

  function newDest(name: string): string {
    const d = scratch.path(`dest-${name}`);
    fs.mkdirSync(d);
    return d;
  }

  async function withImage(image: string, check: (mnt: string) => void): Promise<void> {
    const mnt = scratch.path(`mnt-${path.basename(path.dirname(image))}-${path.basename(image)}`);
    fs.mkdirSync(mnt, { recursive: true });
    sh('mount', ['-o', 'ro,loop', image, mnt]);
    try {
      check(mnt);
    } finally {
      sh('umount', [mnt]);
    }
  }

  function manifestOf(dest: string, name: string): ReturnType<typeof parseManifest>['manifest'] {
    return parseManifest(fs.readFileSync(path.join(dest, `${name}.manifest.xml`))).manifest;
  }

  describe('bundling', () => {
    let tree: RichTree;
    let src: string;
    beforeAll(() => {
      src = scratch.path('rich');
      makeSourceFs(scratch, 'rich', 'ext4', 256, src, { label: 'roundtrip' });
      tree = fillRichTree(src);
    });

    it('bundle -> unbundle gives back the image, and the image holds the source exactly', async () => {
      const dest = newDest('roundtrip');
      // The signing key and certificate live inside the volume (as on a Packer build instance).
      fs.copyFileSync(key, tree.keyFile);
      fs.copyFileSync(cert, tree.certFile);
      const ok = await runCli(
        'ec2-bundle-vol',
        [
          ...signing,
          '-k',
          tree.keyFile,
          '-c',
          tree.certFile,
          '--no-inherit',
          '--no-filter',
          '-v',
          src,
          '-d',
          dest,
          '-p',
          'rt',
        ],
        { env },
      );
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('Volume cloning done.');
      expect(ok.stdout).toMatch(/^Created rt\.part\.\d+$/m);
      expect(ok.stdout).toContain(`Bundle manifest is ${path.join(dest, 'rt.manifest.xml')}`);
      expect(ok.stdout.trim().split('\n').pop()).toBe('ec2-bundle-vol complete.');
      const image = path.join(dest, 'rt');
      expect(fs.existsSync(image)).toBe(true); // kept, as the reference does
      const m = manifestOf(dest, 'rt');
      expect(m.image.name).toBe('rt');
      expect(m.image.type).toBe('machine');
      expect(m.image.size).toBe(fs.statSync(image).size);
      expect(m.machineConfiguration?.kernelId).toBeUndefined();

      const out = scratch.path('restored');
      fs.mkdirSync(out);
      const u = await runCli('ec2-unbundle', [
        '-m',
        path.join(dest, 'rt.manifest.xml'),
        '-k',
        key,
        '-s',
        dest,
        '-d',
        out,
        '--cert',
        cert,
      ]);
      expect(u.code, u.stderr).toBe(0);
      const restored = path.join(out, 'rt');
      expect(sha256(restored)).toBe(sha256(image));
      const st = fs.statSync(restored);
      expect(st.blocks * 512).toBeLessThan(st.size / 2); // holes kept
      await withImage(restored, (mnt) => {
        expectFaithfulCopy(src, mnt, (rel) => richTreeLeftOut(tree, rel));
        for (const rel of tree.absent) expect(fs.existsSync(path.join(mnt, rel)), rel).toBe(false);
      });
    });

    it('inherits kernel, ramdisk, product codes, mapping and ancestry over IMDSv2 (tokens required)', async () => {
      const server = await startImdsServer('v2-required', instance);
      try {
        const dest = newDest('imdsv2');
        const r = await runCli('ec2-bundle-vol', [...signing, '-v', small, '-d', dest, '-p', 'inherit'], {
          env: { ...env, AWS_EC2_METADATA_SERVICE_ENDPOINT: server.endpoint },
        });
        expect(r.code, r.stderr).toBe(0);
        const m = manifestOf(dest, 'inherit');
        expect(m.machineConfiguration).toMatchObject({
          kernelId: 'aki-fc8f11cc',
          ramdiskId: 'ari-0a1b2c3d',
          productCodes: ['abcdefghijklmnopqrstuvwx1'],
        });
        expect(m.machineConfiguration?.blockDeviceMapping).toEqual(
          expect.arrayContaining([
            { virtual: 'ami', device: 'sda1' },
            { virtual: 'root', device: '/dev/sda1' },
            { virtual: 'ephemeral0', device: 'sdb' },
          ]),
        );
        expect(m.image.ancestry).toEqual(['ami-00000001', 'ami-0a1b2c3d4e5f60718']);
        // Every read carried the token from the PUT.
        expect(server.requests[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
        const gets = server.requests.filter((q) => q.method === 'GET');
        expect(gets.length).toBeGreaterThan(5);
        expect(gets.every((q) => q.token !== undefined && server.tokens.includes(q.token))).toBe(true);
      } finally {
        await server.close();
      }
    });

    it('keeps --kernel and -B over inherited values, and falls back to IMDSv1', async () => {
      const server = await startImdsServer('v1-only', instance);
      try {
        const dest = newDest('imdsv1');
        const r = await runCli(
          'ec2-bundle-vol',
          [
            ...signing,
            '-v',
            small,
            '-d',
            dest,
            '-p',
            'v1',
            '--kernel',
            'aki-mine',
            '-B',
            'ami=xvda1,root=/dev/xvda1',
          ],
          { env: { ...env, AWS_EC2_METADATA_SERVICE_ENDPOINT: server.endpoint } },
        );
        expect(r.code, r.stderr).toBe(0);
        const m = manifestOf(dest, 'v1');
        expect(m.machineConfiguration?.kernelId).toBe('aki-mine');
        expect(m.machineConfiguration?.ramdiskId).toBe('ari-0a1b2c3d');
        expect(m.machineConfiguration?.blockDeviceMapping).toEqual([
          { virtual: 'ami', device: 'xvda1' },
          { virtual: 'root', device: '/dev/xvda1' },
        ]);
        expect(server.requests.filter((q) => q.method === 'GET').every((q) => q.token === undefined)).toBe(
          true,
        );
      } finally {
        await server.close();
      }
    });

    it('exits 12, naming --no-inherit, before any work when metadata is unreachable', async () => {
      const server = await startImdsServer('v2-no-token', instance);
      const dest = newDest('unreachable');
      let r: CliResult;
      try {
        r = await runCli('ec2-bundle-vol', [...signing, '-v', small, '-d', dest, '-p', 'never'], {
          env: { ...env, AWS_EC2_METADATA_SERVICE_ENDPOINT: server.endpoint },
        });
      } finally {
        await server.close();
      }
      expect(r.code).toBe(12);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ERROR: can't access instance metadata .*use --no-inherit/);
      expect(fs.readdirSync(dest)).toEqual([]);
    });

    it('--clone-only never asks the metadata service', async () => {
      const server = await startImdsServer('v2-required', instance);
      try {
        const dest = newDest('cloneonly');
        const r = await runCli(
          'ec2-bundle-vol',
          ['--clone-only', '--batch', '-v', small, '-d', dest, '-p', 'c'],
          {
            env: { ...env, AWS_EC2_METADATA_SERVICE_ENDPOINT: server.endpoint },
          },
        );
        expect(r.code, r.stderr).toBe(0);
        expect(server.requests).toEqual([]);
        expect(fs.readdirSync(dest)).toEqual(['c']);
      } finally {
        await server.close();
      }
    });
  });

  it('runs twice at the same time on different sources without colliding', async () => {
    const dest = newDest('concurrent');
    const sources = ['one', 'two'].map((n) => {
      const d = scratch.path(`src-${n}`);
      fs.mkdirSync(path.join(d, 'srv'), { recursive: true });
      for (let i = 0; i < 200; i++)
        fs.writeFileSync(path.join(d, 'srv', `${n}-${i}`), `${n} ${i}\n`.repeat(100));
      return d;
    });
    const [a, b] = await Promise.all(
      sources.map((s, i) =>
        runCli('ec2-bundle-vol', ['--clone-only', '--batch', '-v', s, '-d', dest, '-p', `img-${i}`], { env }),
      ),
    );
    expect(a!.code, a!.stderr).toBe(0);
    expect(b!.code, b!.stderr).toBe(0);
    for (const [i, n] of ['one', 'two'].entries())
      await withImage(path.join(dest, `img-${i}`), (mnt) => {
        const files = fs.readdirSync(path.join(mnt, 'srv'));
        expect(files).toHaveLength(200);
        expect(files.every((f) => f.startsWith(`${n}-`))).toBe(true);
      });
  });

  describe('Ctrl-C', () => {
    /**
     * Starts a run whose --script waits (and, for `stubborn`, ignores the SIGTERM bundle-vol sends
     * it on Ctrl-C, so bundle-vol is still waiting for it when a second Ctrl-C makes it exit at
     * once), interrupts it once the image is mounted, and returns its result.
     */
    async function interrupt(
      signals: number,
      stubborn: boolean,
    ): Promise<{ code: number | null; stderr: string; dest: string }> {
      const dest = newDest(`sigint-${signals}`);
      const marker = scratch.path(`mounted-${signals}`);
      const pidFile = scratch.path(`script-${signals}.pid`);
      const script = scratch.path(`wait-${signals}.sh`);
      const body = stubborn
        ? `trap '' TERM\necho $$ > '${pidFile}'\ntouch '${marker}'\ni=0\nwhile [ $i -lt 20 ]; do sleep 1; i=$((i+1)); done\n`
        : `touch '${marker}'\nexec sleep 60\n`;
      fs.writeFileSync(script, `#!/bin/sh\n${body}`, { mode: 0o755 });
      const child = spawn(
        process.execPath,
        [
          path.join(projectRoot, 'bin/ec2-bundle-vol.js'),
          '--clone-only',
          '--batch',
          '-v',
          small,
          '-d',
          dest,
          '-p',
          'img',
          '-S',
          script,
        ],
        { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      try {
        for (let i = 0; i < 300 && !fs.existsSync(marker); i++) await new Promise((r) => setTimeout(r, 100));
        expect(fs.existsSync(marker)).toBe(true);
        for (let i = 0; i < signals; i++) {
          child.kill('SIGINT');
          // Separate signals (pending ones would merge into one), the first being handled.
          await new Promise((r) => setTimeout(r, 500));
        }
        return { code: await closed, stderr, dest };
      } finally {
        if (fs.existsSync(pidFile)) {
          try {
            process.kill(-Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }

    function expectNothingLeft(dest: string): void {
      expect(fs.readdirSync(dest)).toEqual([]);
      expect(loopDevices().filter((l) => l.file.startsWith(dest))).toEqual([]);
      expect(workDirs(env.TMPDIR)).toEqual([]);
      expect(scratch.mountsBelow().filter((m) => m.startsWith(env.TMPDIR!))).toEqual([]);
    }

    it('once: stops the script, unmounts, detaches, removes the partial image; exit 255', async () => {
      const { code, stderr, dest } = await interrupt(1, false);
      // 255 once clean-up finished; 130 if it had not after 1.5 s (a slow machine) and the
      // exit hook finished it: either way nothing may be left.
      expect([255, 130]).toContain(code);
      expect(stderr).toContain('ec2-bundle-vol interrupted');
      expectNothingLeft(dest);
    });

    it('twice (exit at once): the exit hook still cleans up', async () => {
      const { code, dest } = await interrupt(2, true);
      expect(code).toBe(255);
      expectNothingLeft(dest);
    });
  });

  it('--generate-fstab writes a corrected standard fstab; -S runs on the mounted image', async () => {
    const dest = newDest('fstab');
    const script = scratch.path('customize.sh');
    fs.writeFileSync(script, '#!/bin/sh\necho "customized" > "$1/etc/motd"\n', { mode: 0o755 });
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', small, '-d', dest, '-p', 'gen', '--generate-fstab', '-S', script],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    const uuid = /UUID ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
    await withImage(path.join(dest, 'gen'), (mnt) => {
      const fstab = fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8');
      expect(fstab).toMatch(new RegExp(`^UUID=${uuid} +/ +ext4 +defaults +1 1$`, 'm'));
      expect(fstab).toMatch(/^\/dev\/sdb +\/mnt +auto +defaults,nofail/m);
      expect(fs.readFileSync(path.join(mnt, 'etc/fstab.old'), 'utf8')).toBe(
        'LABEL=old-root / ext4 defaults 0 1\n',
      );
      expect(fs.readFileSync(path.join(mnt, 'etc/motd'), 'utf8')).toBe('customized\n');
    });
  });

  it('--fstab FILE is used as it is', async () => {
    const dest = newDest('fstabfile');
    const mine = scratch.path('my-fstab');
    fs.writeFileSync(mine, '/dev/xvda1 / ext4 defaults 1 1\n');
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', small, '-d', dest, '-p', 'f', '--fstab', mine],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    await withImage(path.join(dest, 'f'), (mnt) => {
      expect(fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8')).toBe('/dev/xvda1 / ext4 defaults 1 1\n');
    });
  });

  it('stops with a clear message, leaving nothing, when --size is too small for the data', async () => {
    const dest = newDest('full');
    const big = scratch.path('big-source');
    fs.mkdirSync(big);
    fs.writeFileSync(path.join(big, 'random.bin'), crypto.randomBytes(90 * 1024 * 1024));
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', big, '-d', dest, '-p', 'f', '-s', '64'],
      { env },
    );
    expect(r.code).toBe(254);
    expect(r.stdout).toMatch(/Image size: 64 MiB .*that may be too small/);
    expect(r.stderr).toMatch(
      /^ERROR: the image is full: the volume does not fit; give a larger -s\/--size$/m,
    );
    expect(fs.readdirSync(dest)).toEqual([]);
    expect(workDirs(env.TMPDIR)).toEqual([]);
  });

  describe('refused before any work', () => {
    const cases: [string, string[], number, RegExp][] = [
      [
        'no key without --clone-only',
        ['-c', cert, '-u', '123456789012'],
        1,
        /missing mandatory parameter: --privatekey/,
      ],
      [
        '--fstab with --generate-fstab',
        ['--clone-only', '--fstab', '/etc/hostname', '--generate-fstab'],
        1,
        /may not both be provided/,
      ],
      ['a stray argument', ['--clone-only', 'stray'], 1, /unexpected argument 'stray'/],
      [
        'a relative extra -e argument',
        ['--clone-only', '-e', '/tmp/a', 'relative'],
        1,
        /extra -e paths must be absolute/,
      ],
      ['a missing volume', ['--clone-only', '-v', '/nonexistent/volume'], 2, /--volume has invalid value/],
      ['a bad -P', ['--clone-only', '-P', 'zfs'], 1, /--partition has invalid value 'zfs'/],
      ['a prefix with a slash', ['--clone-only', '-p', 'a/b'], 1, /'\/' character not allowed/],
    ];
    for (const [what, args, code, message] of cases)
      it(what, async () => {
        const dest = newDest(`bad-${what.replace(/\W+/g, '-')}`);
        const r = await runCli('ec2-bundle-vol', ['--batch', '-v', small, '-d', dest, ...args], { env });
        expect(r.code).toBe(code);
        expect(r.stderr).toMatch(message);
        expect(fs.readdirSync(dest)).toEqual([]);
      });

    it('an image that already exists', async () => {
      const dest = newDest('exists');
      fs.writeFileSync(path.join(dest, 'image'), 'precious');
      const r = await runCli('ec2-bundle-vol', ['--clone-only', '--batch', '-v', small, '-d', dest], { env });
      expect(r.code).toBe(254);
      expect(r.stderr).toMatch(/image file .*\/image already exists; remove it or choose another -p/);
      expect(fs.readFileSync(path.join(dest, 'image'), 'utf8')).toBe('precious');
    });
  });
});
