// Registration: the RegisterImage arguments as the server received them (boot mode found from the
// image, ENA, IMDSv2, architecture, root snapshot), EnableImageDeprecation, `register` for an
// existing snapshot, the `done` event, and the refusal of an image unbootable under HVM before
// any request is sent.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/fixtures.js';
import { startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import { BLOCK, ebsCli, snapshotIdOf, sparseImage, writeBiosMbr, writeUefiGpt } from './ebs-helpers.js';

let server: EbsServer;
const tmp = tempDir('register');

beforeAll(async () => {
  server = await startEbsServer({ notFoundWindowMs: 100, completionDelayMs: 200 });
});

afterAll(async () => {
  await server.close();
  tmp.remove();
});

function image(name: string, boot: (file: string) => void): string {
  const file = path.join(tmp.dir, name);
  sparseImage(file, 16 * BLOCK, [2, 3]);
  boot(file);
  return file;
}

const imageOf = (stdout: string) => {
  const id = /ami-[0-9a-f]+/.exec(stdout)?.[0];
  return id ? server.state.images.get(id) : undefined;
};

describe('to-ebs --register', () => {
  it('BIOS image: legacy-bios, ENA, IMDSv2 required, HVM, root from the snapshot; --json done carries both ids', async () => {
    const r = await ebsCli(server, [
      'to-ebs',
      image('bios.img', writeBiosMbr),
      '--register',
      'bios-ami',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const events = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events.find((e) => e.type === 'done')!;
    const img = server.state.images.get(done.imageId as string)!;
    expect(img).toMatchObject({
      name: 'bios-ami',
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      bootMode: 'legacy-bios',
      enaSupport: true,
      imdsSupport: 'v2.0',
      rootDeviceName: '/dev/xvda',
    });
    expect(img.blockDeviceMappings[0]!.ebs?.snapshotId).toBe(done.snapshotId);
    expect(server.state.snapshots.get(done.snapshotId as string)!.status).toBe('completed');
  });

  it('UEFI image (GPT with an EFI system partition): uefi; --no-ena, --no-imds-v2, --sriov, -r arm64', async () => {
    const r = await ebsCli(server, [
      'to-ebs',
      image('uefi.img', writeUefiGpt),
      '--register',
      'uefi-ami',
      '--no-ena',
      '--no-imds-v2',
      '--sriov',
      '-r',
      'arm64',
    ]);
    expect(r.code).toBe(0);
    const img = imageOf(r.stdout)!;
    expect(img).toMatchObject({ bootMode: 'uefi', architecture: 'arm64', sriovNetSupport: 'simple' });
    expect(img.enaSupport).not.toBe(true);
    expect(img.imdsSupport).toBeUndefined();
  });

  it('refuses a partitionless image before any request, and --force registers it', async () => {
    const bare = image('bare.img', (f) => {
      const fd = fs.openSync(f, 'r+');
      fs.writeSync(fd, Buffer.from([0x53, 0xef]), 0, 2, 1024 + 56); // ext4 superblock magic
      fs.closeSync(fd);
    });
    const starts = server.faults.counters.requests.StartSnapshot ?? 0;
    const r = await ebsCli(server, ['to-ebs', bare, '--register', 'bare-ami']);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/not bootable under HVM: a bare ext2\/3\/4 file system/);
    expect(r.stderr).toMatch(/--hvm/);
    expect(server.faults.counters.requests.StartSnapshot ?? 0).toBe(starts);
    expect(fs.existsSync(`${bare}.to-ebs-journal`)).toBe(false);
    const forced = await ebsCli(server, ['to-ebs', bare, '--register', 'bare-ami', '--force']);
    expect(forced.code).toBe(0);
    expect(imageOf(forced.stdout)?.bootMode).toBeUndefined();
  });
});

describe('register SNAPSHOT', () => {
  it('registers an existing snapshot with the flags given and deprecates it in a second call', async () => {
    const up = await ebsCli(server, ['to-ebs', image('plain.img', writeBiosMbr)]);
    expect(up.code).toBe(0);
    const snap = snapshotIdOf(up);
    const deprecations = server.faults.counters.requests.EnableImageDeprecation ?? 0;
    const r = await ebsCli(server, [
      'register',
      snap,
      '--name',
      'again',
      '--boot-mode',
      'uefi',
      '--deprecate-at',
      '2030-01-01T00:00:00Z',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const img = imageOf(r.stdout)!;
    expect(img).toMatchObject({ name: 'again', bootMode: 'uefi', enaSupport: true, imdsSupport: 'v2.0' });
    expect(img.deprecationTime?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(server.faults.counters.requests.EnableImageDeprecation).toBe(deprecations + 1);
  });

  it('refuses a snapshot id that is not one', async () => {
    const r = await ebsCli(server, ['register', 'ami-123', '--name', 'x']);
    expect(r.code).toBe(1);
  });
});
