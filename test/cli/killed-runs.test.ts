// A run killed with SIGKILL cannot remove its hidden temporary files. The next run for the same
// destination and name removes those whose owning process is gone, says so in one line, and
// leaves a live process's temporaries alone.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownedTempPath } from '../../src/io/owned-temp.js';
import { runCli } from '../support/cli.js';
import { keysDir, projectRoot, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('killed-runs');
});
afterAll(() => tmp.remove());

const k = path.join(keysDir, 'user-key.pem');
const c = path.join(keysDir, 'user-cert.pem');
const bundleArgs = (image: string, dest: string): string[] => [
  ...['bundle-image', '-i', image, '-d', dest, '-k', k, '-c', c, '-u', '123456789012', '-r', 'x86_64'],
  ...['--batch', '--ec2cert', path.join(keysDir, 'ec2-cert.pem')],
];

const temps = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('.'));

/** Starts `args`, waits until `ready()` holds, then SIGKILLs it. */
async function killWhen(args: string[], ready: () => boolean): Promise<void> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin/amibundle.js'), ...args], {
    stdio: 'ignore',
  });
  const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_c, s) => resolve(s)));
  for (let i = 0; i < 600 && !ready() && child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  expect(await closed).toBe('SIGKILL');
}

describe('temporaries left by a killed run', () => {
  it('bundle-image: the next run removes the dead run’s hidden parts, not a live one’s', async () => {
    const image = path.join(tmp.dir, 'img');
    // Random data does not compress: several 10 MiB parts, written one after another.
    fs.writeFileSync(image, crypto.randomBytes(48 * 1024 * 1024));
    const dest = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(dest);
    await killWhen(bundleArgs(image, dest), () =>
      temps(dest).some((f) => f.startsWith('.img.part.') && fs.statSync(path.join(dest, f)).size > 0),
    );
    const left = temps(dest);
    expect(left.length).toBeGreaterThan(0);
    // One of a live process (this one): not to be touched.
    const live = ownedTempPath(dest, 'img.part.0');
    fs.writeFileSync(live, 'in use');

    const r = await runCli('amibundle', bundleArgs(image, dest));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      new RegExp(
        `removed ${left.length} temporary file\\(s\\) \\([\\d.]+ MiB\\) of 'img' in .* left by an earlier run that was killed`,
      ),
    );
    expect(temps(dest)).toEqual([path.basename(live)]);
  });

  it('unbundle: the next run removes the dead run’s partial image', async () => {
    const image = path.join(tmp.dir, 'img');
    const bundle = path.join(tmp.dir, 'bundle');
    const dest = path.join(tmp.dir, 'restored');
    fs.mkdirSync(dest);
    const manifest = path.join(bundle, 'img.manifest.xml');
    const args = ['unbundle', '-m', manifest, '-k', k, '-s', bundle, '-d', dest];
    await killWhen(args, () => temps(dest).some((f) => fs.statSync(path.join(dest, f)).size > 0));
    const left = temps(dest);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^\.img\.amibundle-.*\.partial$/);

    const r = await runCli('amibundle', args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      /removed 1 temporary file\(s\) .* of 'img' in .* left by an earlier run that was killed/,
    );
    expect(temps(dest)).toEqual([]);
    expect(fs.readFileSync(path.join(dest, 'img')).equals(fs.readFileSync(image))).toBe(true);
  });
});
