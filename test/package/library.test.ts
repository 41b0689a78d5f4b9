// amibundle imported by name, as a library user gets it: the packed tarball installed into a
// fresh project, the README's "Use as a library" example run there with node (bundle a sparse
// image, restore it, compare), and the package's types resolving through its `exports`.
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysDir, projectRoot, tempDir } from '../support/fixtures.js';
import { packProject } from '../support/pack.js';

const execFileAsync = promisify(execFile);
const MiB = 1024 ** 2;
let tmp: { dir: string; remove: () => void };
let project: string;

/** The README's example: the one js code block of "Use as a library". */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use as a library'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  expect(m, 'README has the library example').not.toBeNull();
  return m![1]!;
}

beforeAll(async () => {
  tmp = tempDir('library');
  const tarball = await packProject(tmp.dir);
  project = path.join(tmp.dir, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(
    path.join(project, 'package.json'),
    '{"name":"user-project","private":true,"type":"module"}',
  );
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tarball],
    { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}, 900_000);

afterAll(() => tmp?.remove());

describe("the package's library entry point", () => {
  it('runs the README example: bundleImage, then restoreBundle, imported by name', async () => {
    fs.copyFileSync(path.join(keysDir, 'user-key.pem'), path.join(project, 'pk.pem'));
    fs.copyFileSync(path.join(keysDir, 'user-cert.pem'), path.join(project, 'cert.pem'));
    // A sparse image: 3 MiB of random data at 1 MiB, the rest a hole.
    const data = crypto.randomBytes(3 * MiB);
    const fd = fs.openSync(path.join(project, 'disk.img'), 'w');
    fs.writeSync(fd, data, 0, data.length, MiB);
    fs.ftruncateSync(fd, 16 * MiB);
    fs.closeSync(fd);
    fs.mkdirSync(path.join(project, 'bundle'));
    fs.mkdirSync(path.join(project, 'restored'));
    fs.writeFileSync(path.join(project, 'example.mjs'), readmeExample());
    const r = await execFileAsync(process.execPath, ['example.mjs'], { cwd: project });
    expect(r.stdout.trim()).toBe(`1 parts; ${path.join('restored', 'disk.img')} true`);
    const restored = fs.readFileSync(path.join(project, 'restored', 'disk.img'));
    expect(restored.length).toBe(16 * MiB);
    expect(restored.subarray(MiB, 4 * MiB).equals(data)).toBe(true);
  });

  it('exports only the public entry point, with its types', async () => {
    const pkg = path.join(project, 'node_modules', 'amibundle');
    expect(fs.existsSync(path.join(pkg, 'dist', 'index.d.ts'))).toBe(true);
    const script = [
      "const lib = await import('amibundle');",
      "for (const name of ['bundleImage','restoreBundle','verifyParts','uploadBundle','downloadBundle','deleteBundle','bundleVolume','migrateManifestFile','silentReporter'])",
      "  if (lib[name] === undefined) throw new Error('missing ' + name);",
      "try { await import('amibundle/dist/cli/main.js'); console.log('deep import allowed'); }",
      'catch (e) { console.log(e.code); }',
    ].join('\n');
    fs.writeFileSync(path.join(project, 'exports.mjs'), script);
    const r = await execFileAsync(process.execPath, ['exports.mjs'], { cwd: project });
    expect(r.stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
