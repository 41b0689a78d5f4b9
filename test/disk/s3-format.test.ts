// `unbundle --from s3://… --format`: the S3 restore goes through the same image sinks, so a
// bundle uploaded to a real radosgw comes back as a qcow2 and a streamOptimized VMDK that
// qemu-img reads as the original image.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleArgs, writeSparseImage } from '../integration/s3-bundles.js';
import { runCli } from '../support/cli.js';
import { keysDir, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';
import { expectCheckClean, expectSameAsRaw } from './qemu.js';

const MiB = 1024 * 1024;
let gw: Radosgw;
let work: { dir: string; remove: () => void };

beforeAll(async () => {
  gw = await startRadosgw();
  work = tempDir('disk-s3');
}, 180_000);

afterAll(async () => {
  await gw?.stop();
  work?.remove();
});

describe('unbundle --from s3://… --format', () => {
  it('restores an uploaded bundle as qcow2 and as streamOptimized VMDK, only that file in the destination', async () => {
    const image = path.join(work.dir, 'disk.img');
    writeSparseImage(image, 40 * MiB + 512, [
      [MiB, 11 * MiB],
      [33 * MiB, 2 * MiB + 100],
    ]);
    const s3 = ['--url', gw.endpoint, '--access-key', gw.accessKey, '--secret-key', gw.secretKey];
    const bundleDir = path.join(work.dir, 'unused');
    const b = await runCli('amibundle', [
      'bundle-image',
      ...bundleArgs(image, bundleDir).filter((_a, i, all) => all[i] !== '-d' && all[i - 1] !== '-d'),
      '--upload',
      's3://disk-formats/img',
      '--acl',
      'private',
      ...s3,
    ]);
    expect(b.code, b.stderr).toBe(0);
    for (const format of ['qcow2', 'vmdk'] as const) {
      const dest = fs.mkdtempSync(path.join(work.dir, `${format}-`));
      const u = await runCli('amibundle', [
        'unbundle',
        '--from',
        's3://disk-formats/img/disk.img.manifest.xml',
        '-k',
        path.join(keysDir, 'user-key.pem'),
        '-d',
        dest,
        '--format',
        format,
        ...s3,
      ]);
      expect(u.code, u.stderr).toBe(0);
      const out = path.join(dest, `disk.img.${format}`);
      expect(fs.readdirSync(dest)).toEqual([path.basename(out)]);
      expectCheckClean(format, out);
      expectSameAsRaw(format, image, out);
    }
  });
});
