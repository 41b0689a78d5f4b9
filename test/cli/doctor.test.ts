// `amibundle doctor` as a user runs it: against a real S3 server (Ceph radosgw) for the bucket
// checks, a capture server for a bucket with ACLs disabled (radosgw has no Object Ownership),
// real disk images for the HVM check, a real tmpfs for the destination check.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer } from '../support/capture-server.js';
import { runCli, type CliResult } from '../support/cli.js';
import { keysDir, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';

const isRoot = process.getuid?.() === 0;
const GRUB_BOOT_IMG = '/usr/lib/grub/i386-pc/boot.img';
const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');

let gw: Radosgw;
let work: { dir: string; remove: () => void };

interface CheckEvent {
  readonly type: string;
  readonly name: string;
  readonly status: string;
  readonly message: string;
  readonly fix?: string;
}

function events(r: CliResult): CheckEvent[] {
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as CheckEvent);
}

function check(r: CliResult, name: string): CheckEvent {
  const found = events(r).find((e) => e.type === 'check' && e.name === name);
  if (!found) throw new Error(`no ${name} check in ${r.stdout}`);
  return found;
}

const doctor = (args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliResult> =>
  runCli('amibundle', ['doctor', ...args], env ? { env } : {});

/** A file of `size` bytes whose first sector is `mbr` plus a partition table made by sfdisk. */
function diskWith(name: string, table: string): string {
  const file = path.join(work.dir, name);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 8 * 2 ** 20);
  execFileSync('sfdisk', ['--quiet', file], { input: table, stdio: ['pipe', 'pipe', 'pipe'] });
  return file;
}

/**
 * Puts GRUB's own boot.img code (the first 440 bytes of the MBR, as grub-install writes it) in
 * front of the partition table sfdisk made; the 0x55AA signature is sfdisk's.
 */
function installGrubBootCode(file: string): void {
  const code = fs.readFileSync(GRUB_BOOT_IMG).subarray(0, 440);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, code, 0, code.length, 0);
  fs.closeSync(fd);
}

beforeAll(async () => {
  work = tempDir('doctor');
  gw = await startRadosgw();
  await gw.s3.send(new CreateBucketCommand({ Bucket: 'doctor-ok' }));
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  work?.remove();
});

describe('bucket checks against radosgw', () => {
  it('a bucket with ACLs enabled: exists, probe object written with public-read and removed; exit 0', async () => {
    const r = await doctor(['-b', 'doctor-ok/some/prefix', ...gw.cliFlags, '--acl', 'public-read', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(check(r, 'credentials')).toMatchObject({ status: 'ok' });
    expect(check(r, 'credentials').message).toContain('from the command line');
    expect(check(r, 'bucket')).toMatchObject({ status: 'ok' });
    expect(check(r, 'bucket').message).toContain('doctor-ok exists in region');
    const probe = check(r, 'bucket-probe');
    expect(probe.status).toBe('ok');
    expect(probe.message).toMatch(
      /wrote and removed some\/prefix\/\.amibundle-doctor-[0-9a-f]{12} with ACL public-read/,
    );
    // Removed means gone from the server.
    expect(await gw.listKeys('doctor-ok')).toEqual([]);
    const done = events(r).find((e) => e.type === 'done') as unknown as { failed: number; checks: number };
    expect(done.failed).toBe(0);
    expect(r.stdout).not.toContain(gw.secretKey);
  });

  it('text mode: one line per check, each starting with its status', async () => {
    const r = await doctor(['-b', 'doctor-ok', ...gw.cliFlags, '--acl', 'public-read', '--for', 'upload']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 3).map((l) => l.split(/\s+/)[0])).toEqual(['ok', 'ok', 'ok']);
    expect(lines[0]).toMatch(/^ok\s+credentials: from the command line \(-a\/-s\), access key /);
    expect(lines.at(-1)).toBe('All 3 checks passed.');
  });

  it('a missing bucket: FAILED naming it, exit 254 with one summary line on stderr', async () => {
    const r = await doctor(['-b', 'doctor-nonexistent', ...gw.cliFlags, '--acl', 'public-read']);
    expect(r.code).toBe(254);
    expect(r.stdout).toMatch(
      /^FAILED\s+bucket: bucket doctor-nonexistent does not exist.*Fix: check -b\/--bucket/m,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/1 of \d+ checks FAILED/);
  });

  it("stock radosgw's zone name with --region eu-west-1: not a region mismatch, the bucket check passes with one warning", async () => {
    const r = await doctor([
      '-b',
      'doctor-ok',
      ...gw.cliFlags,
      '--region',
      'eu-west-1',
      '--acl',
      'public-read',
    ]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^ok\s+bucket: doctor-ok exists in region default/m);
    expect(r.stderr.trim()).toBe(
      `WARNING: bucket doctor-ok reports location 'default' (not an AWS region name) at ${gw.endpoint}; using it instead of eu-west-1 (--region)`,
    );
  });

  it('a wrong secret key: the bucket check FAILS saying so, and the secret appears nowhere', async () => {
    const wrong = `WRONG${crypto.randomBytes(12).toString('hex')}`;
    const r = await doctor([
      '-b',
      'doctor-ok',
      '--url',
      gw.endpoint,
      '-a',
      gw.accessKey,
      '-s',
      wrong,
      '--acl',
      'public-read',
    ]);
    expect(r.code).toBe(254);
    expect(r.stdout).toMatch(
      /^FAILED\s+bucket: .*SignatureDoesNotMatch.*Fix: the secret access key does not belong/m,
    );
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(await gw.listKeys('doctor-ok')).toEqual([]);
  });
});

describe('a bucket with ACLs disabled (capture server answering BucketOwnerEnforced)', () => {
  it('FAILED with the fix, and no probe object sent; credentials from the environment are named', async () => {
    const server = await startCaptureServer({ bucketLocation: '', objectOwnership: 'BucketOwnerEnforced' });
    try {
      const r = await doctor(['-b', 'enforced', '--url', server.endpoint, '--json'], {
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLEDOCTOR1234',
        AWS_SECRET_ACCESS_KEY: 'doctor-env-secret-never-printed',
      });
      expect(r.code).toBe(254);
      const creds = check(r, 'credentials');
      expect(creds.status).toBe('ok');
      expect(creds.message).toContain('environment');
      expect(creds.message).toContain('AKID…1234');
      const bucket = check(r, 'bucket');
      expect(bucket.status).toBe('failed');
      expect(bucket.message).toContain(
        'bucket enforced has ACLs disabled (Object Ownership: BucketOwnerEnforced)',
      );
      expect(bucket.fix).toContain(
        "aws s3api put-bucket-ownership-controls --bucket enforced --ownership-controls 'Rules=[{ObjectOwnership=ObjectWriter}]'",
      );
      expect(events(r).some((e) => e.type === 'done')).toBe(true);
      expect(server.requests.filter((q) => q.method === 'PUT')).toEqual([]);
      expect(r.stdout + r.stderr).not.toContain('doctor-env-secret-never-printed');
    } finally {
      await server.close();
    }
  });
});

describe('image checks', () => {
  it('a bare ext4 file system (what bundle-vol -P none makes): not bootable under HVM, a warning; exit 0', async () => {
    const image = path.join(work.dir, 'bare.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 16 * 2 ** 20);
    execFileSync('mkfs.ext4', ['-q', '-F', image]);
    const r = await doctor(['-i', image, '--ec2cert', ec2Cert, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const boot = check(r, 'image-boot');
    expect(boot.status).toBe('warning');
    expect(boot.message).toContain('not bootable under HVM; suits paravirtual launches with --kernel');
    expect(boot.fix).toContain('-P mbr');
    expect(check(r, 'image-size').status).toBe('ok');
  });

  it('an MBR with the 0x55AA signature and GRUB boot code: bootable under HVM', async () => {
    const image = diskWith('grub-mbr.img', 'label: dos\n2048,,83,*\n');
    // Before GRUB's code goes in: a partition table with an empty boot-code area.
    const before = await doctor(['-i', image, '--ec2cert', ec2Cert, '--json']);
    expect(check(before, 'image-boot')).toMatchObject({ status: 'warning' });
    expect(check(before, 'image-boot').message).toContain('no boot code');
    installGrubBootCode(image);
    const r = await doctor(['-i', image, '--ec2cert', ec2Cert, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(check(r, 'image-boot')).toMatchObject({ status: 'ok' });
    expect(check(r, 'image-boot').message).toContain('MBR with boot signature and GRUB boot code');
  });

  it('GPT: GRUB boot code plus a BIOS boot partition is bootable; without that partition it is not', async () => {
    const withBiosBoot = diskWith(
      'grub-gpt.img',
      'label: gpt\nsize=1MiB, type=21686148-6449-6E6F-744E-656564454649\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n',
    );
    const without = diskWith('plain-gpt.img', 'label: gpt\ntype=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n');
    installGrubBootCode(withBiosBoot);
    installGrubBootCode(without);
    const good = await doctor(['-i', withBiosBoot, '--ec2cert', ec2Cert, '--json']);
    expect(check(good, 'image-boot')).toMatchObject({ status: 'ok' });
    expect(check(good, 'image-boot').message).toContain('BIOS boot partition');
    const bad = await doctor(['-i', without, '--ec2cert', ec2Cert, '--json']);
    expect(check(bad, 'image-boot')).toMatchObject({ status: 'warning' });
    expect(check(bad, 'image-boot').message).toContain('GPT without a BIOS boot partition');
  });

  it('an image over 10 GiB (sparse): FAILED against the instance-store root limit', async () => {
    const image = path.join(work.dir, 'huge.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 11 * 2 ** 30);
    const r = await doctor(['-i', image, '--ec2cert', ec2Cert, '--json']);
    expect(r.code).toBe(254);
    expect(check(r, 'image-size')).toMatchObject({ status: 'failed' });
    expect(check(r, 'image-size').message).toContain('larger than the 10 GiB');
  });
});

describe.skipIf(!isRoot)('destination on a tmpfs', () => {
  let mnt: string;
  beforeAll(() => {
    mnt = path.join(work.dir, 'tmpfs');
    fs.mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  });
  afterAll(() => {
    if (mnt) execFileSync('umount', [mnt]);
  });

  it('room enough: a warning that the bundle is held in RAM; too little for the image: FAILED', async () => {
    const r = await doctor(['-d', mnt, '--ec2cert', ec2Cert, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const dest = check(r, 'destination');
    expect(dest.status).toBe('warning');
    expect(dest.message).toContain('tmpfs');
    expect(dest.fix).toContain('-d');

    const image = path.join(work.dir, 'random.img');
    fs.writeFileSync(image, crypto.randomBytes(6 * 2 ** 20));
    const full = await doctor(['-d', mnt, '-i', image, '--ec2cert', ec2Cert, '--json']);
    expect(full.code).toBe(254);
    expect(check(full, 'destination')).toMatchObject({ status: 'failed' });
    expect(check(full, 'destination').message).toContain('not enough space');
  });
});

describe('keys', () => {
  it('a matching key and certificate: ok; a mismatched pair: FAILED, exit 254', async () => {
    const good = await doctor(['-k', userKey, '-c', userCert, '--ec2cert', ec2Cert, '--json']);
    expect(good.code, good.stderr).toBe(0);
    expect(check(good, 'keys')).toMatchObject({ status: 'ok' });
    expect(check(good, 'ec2-cert').message).toContain(ec2Cert);
    const bad = await doctor(['-k', userKey, '-c', ec2Cert, '--ec2cert', ec2Cert]);
    expect(bad.code).toBe(254);
    expect(bad.stdout).toMatch(
      /^FAILED\s+keys: the certificate \(-c \S+\) does not match the private key \(-k \S+\)/m,
    );
    expect(bad.stdout).toContain(
      `the certificate (-c ${ec2Cert}) does not match the private key (-k ${userKey})`,
    );
    expect(bad.stderr).toContain('1 of 4 checks FAILED');
  });
});

describe('speed', () => {
  it('names the native engines; ok where libdeflate and ISA-L are installed (CI installs both)', async () => {
    const r = await doctor(['--ec2cert', ec2Cert, '--json']);
    const installed = (soname: string): boolean =>
      execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes(soname);
    const speed = check(r, 'speed');
    expect(speed.status).toBe(installed('libdeflate.so.0') && installed('libisal.so.2') ? 'ok' : 'warning');
    expect(speed.message).toMatch(/libdeflate/);
  });
});

describe('host tools', () => {
  it('--for bundle-vol lists the tools it looked for', async () => {
    const r = await doctor(['--for', 'bundle-vol', '--ec2cert', ec2Cert, '--json']);
    const tools = check(r, 'host-tools');
    // Present or not, each tool is named in the line.
    for (const t of ['rsync', 'losetup', 'sfdisk', 'grub-install']) expect(tools.message).toContain(t);
    expect(r.code).toBe(tools.status === 'failed' ? 254 : 0);
  });
});
