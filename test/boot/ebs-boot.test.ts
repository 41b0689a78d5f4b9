// Boot proof for the EBS path: the boot test's Debian system is bundled (`bundle-vol -P mbr`), the
// bundle becomes a snapshot and a registered AMI in one command (`to-ebs MANIFEST --register`)
// against the EBS direct / EC2 test server, the snapshot comes back as a disk image (`from-ebs`),
// and that image equals the plain `unbundle` restore byte for byte and boots under QEMU far enough
// to print this run's nonce. One boot only: the restore it equals is not booted again.
//
// Needs what boot.test.ts needs (root, x86_64, qemu-system-x86_64, the cached Debian tree); only
// AMIBUNDLE_SKIP_BOOT_TESTS=1 skips it, and says so.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import { runCli } from '../support/cli.js';
import { keysDir } from '../support/fixtures.js';
import { ebsCli } from '../ebs/ebs-helpers.js';
import {
  cachedSystem,
  extractSystem,
  hostSystemSpec,
  installBootMarker,
  MARKER,
  setSourceNaming,
} from './debian-tree.js';
import { bootImage, failureReport, killAllGuests } from './qemu.js';
import { onPath } from './run.js';
import { BootScratch } from './scratch.js';

const skipRequested = process.env.AMIBUNDLE_SKIP_BOOT_TESTS === '1';
if (skipRequested) console.warn('AMIBUNDLE_SKIP_BOOT_TESTS=1: the EBS boot test is SKIPPED');

const key = path.join(keysDir, 'user-key.pem');
const cert = path.join(keysDir, 'user-cert.pem');
const minutes = 60_000;

function log(line: string): void {
  console.log(`[ebs-boot] ${line}`);
}

describe.skipIf(skipRequested)('boot proof: bundle-vol -> to-ebs --register -> from-ebs -> boots', () => {
  let scratch: BootScratch | undefined;
  let server: EbsServer;
  let tree: string;
  let tmp: string;

  beforeAll(async () => {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push('root (loop devices, mounts, chroot)');
    if (process.arch !== 'x64') missing.push(`an x86_64 host (this is ${process.arch})`);
    for (const tool of ['qemu-system-x86_64', 'qemu-img', 'debootstrap', 'sfdisk', 'rsync'])
      if (!onPath(tool)) missing.push(tool);
    if (missing.length > 0)
      throw new Error(
        `the EBS boot test cannot run here; missing: ${missing.join('; ')}. Install them, or set AMIBUNDLE_SKIP_BOOT_TESTS=1 to skip it knowingly.`,
      );
    const cached = await cachedSystem(hostSystemSpec(), log);
    scratch = new BootScratch('ebs');
    tree = scratch.path('system');
    tmp = scratch.mkdir('tmp');
    await extractSystem(cached.tar, tree);
    server = await startEbsServer({ completionDelayMs: 300 });
  }, 45 * minutes);

  afterAll(async () => {
    killAllGuests();
    await server?.close();
    scratch?.release();
  });

  it(
    '-P mbr bundle -> snapshot + legacy-bios AMI -> from-ebs image equal to the unbundle restore, and it boots',
    async () => {
      const nonce = crypto.randomUUID();
      installBootMarker(tree, nonce);
      setSourceNaming(tree, 'debootstrap');
      const name = 'ebs-boot';
      const dest = scratch!.mkdir('bundle');
      const restored = scratch!.mkdir('restored');
      const back = scratch!.mkdir('from-ebs');

      let t = Date.now();
      const bundleVol = await runCli(
        'amibundle',
        ['bundle-vol', '-v', tree, '-P', 'mbr', '-d', dest, '-p', name, '-k', key, '-c', cert].concat([
          '-u',
          '123456789012',
          '-r',
          'x86_64',
          '--no-inherit',
          '--batch',
        ]),
        { env: { TMPDIR: tmp }, timeoutMs: 20 * minutes },
      );
      expect(bundleVol.code, `${bundleVol.stdout}\n${bundleVol.stderr}`).toBe(0);
      fs.rmSync(path.join(dest, name));
      log(`bundle-vol -P mbr took ${((Date.now() - t) / 1000).toFixed(0)} s`);
      const manifest = path.join(dest, `${name}.manifest.xml`);

      // The plain restore the EBS round trip must equal.
      const unbundle = await runCli(
        'amibundle',
        ['unbundle', '-m', manifest, '-k', key, '-s', dest, '-d', restored, '--batch'],
        { timeoutMs: 20 * minutes },
      );
      expect(unbundle.code, `${unbundle.stdout}\n${unbundle.stderr}`).toBe(0);
      const plain = path.join(restored, name);

      // One command: bundle -> snapshot -> registered AMI.
      const before = { ...server.faults.counters.requests };
      t = Date.now();
      const up = await ebsCli(server, ['to-ebs', manifest, '-k', key, '--register', name, '--json'], {
        timeoutMs: 20 * minutes,
      });
      const upSeconds = (Date.now() - t) / 1000;
      expect(up.code, `${up.stdout}\n${up.stderr}`).toBe(0);
      const done = up.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.type === 'done')!;
      const snapshotId = done.snapshotId as string;
      const image = server.state.images.get(done.imageId as string)!;
      expect(image).toMatchObject({ name, bootMode: 'legacy-bios', virtualizationType: 'hvm' });
      expect(image.blockDeviceMappings[0]?.ebs?.snapshotId).toBe(snapshotId);
      const requests = Object.fromEntries(
        Object.entries(server.faults.counters.requests).map(([op, n]) => [op, n - (before[op] ?? 0)]),
      );
      // Only data blocks went up: as many PutSnapshotBlock as blocks the snapshot holds.
      const snap = server.state.snapshots.get(snapshotId)!;
      expect(requests.PutSnapshotBlock).toBe(snap.blocks.size);
      expect(requests.StartSnapshot).toBe(1);
      expect(requests.CompleteSnapshot).toBe(1);
      expect(requests.RegisterImage).toBe(1);
      log(
        `to-ebs --register: ${fs.statSync(plain).size} byte image, ${snap.volumeSize} GiB volume, ${snap.blocks.size} blocks sent, ${String(done.zeroBlocksSkipped)} zero blocks skipped, ${upSeconds.toFixed(1)} s; requests ${JSON.stringify(requests)}`,
      );

      const disk = path.join(back, 'disk.img');
      t = Date.now();
      const down = await runCli(
        'amibundle',
        ['from-ebs', snapshotId, '-o', disk, '--endpoint-url', server.url, '--region', server.region],
        { env: server.env(), timeoutMs: 20 * minutes },
      );
      expect(down.code, `${down.stdout}\n${down.stderr}`).toBe(0);
      log(`from-ebs: ${((Date.now() - t) / 1000).toFixed(1)} s`);
      // Equal to the plain restore (the snapshot's GiB-rounded tail reads as zeros).
      execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', plain, disk]);
      fs.rmSync(dest, { recursive: true });
      fs.rmSync(restored, { recursive: true });

      const boot = await bootImage({ image: disk, bus: 'nvme', marker: MARKER, nonce });
      log(`${boot.booted ? 'booted' : 'did NOT boot'} in ${boot.seconds.toFixed(0)} s`);
      expect(boot.booted, failureReport(boot)).toBe(true);
      expect(boot.report.get('AMIBUNDLE-FAILED-UNITS'), failureReport(boot)).toBe('[]');
    },
    60 * minutes,
  );
});
