// The package as `npm pack` makes it, for the tests that install it the way users do. What
// `prepack` does, minus rebuilding dist/ (the vitest setup built it; rebuilding here could cut a
// file short under a test running beside this one): the prebuilt addon, then the tarball.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from './fixtures.js';

const execFileAsync = promisify(execFile);

/** Packs the project into `dir`; the tarball's path. */
export async function packProject(dir: string): Promise<string> {
  await execFileAsync(process.execPath, [path.join(projectRoot, 'scripts', 'prebuild.mjs')], {
    cwd: projectRoot,
  });
  const packed = (
    await execFileAsync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: projectRoot,
      maxBuffer: 64 * 1024 ** 2,
    })
  ).stdout;
  const info = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string }[];
  return path.join(dir, info[0]!.filename);
}
