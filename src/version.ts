// Version facts shared by `--version`, ec2-ami-tools-version and the manifest's <bundler>.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * amibundle's package.json, found upward from this module: it is src/version.ts under the tests,
 * dist/version.js for the library and a chunk in dist/cli-bundle/ for the command line.
 */
function readOwnPackage(): { name: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 3; up++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
    if (pkg.name === 'amibundle' && typeof pkg.version === 'string')
      return { name: pkg.name, version: pkg.version };
  }
  throw new Error(`amibundle's package.json was not found above ${fileURLToPath(import.meta.url)}`);
}

export const toolVersion: string = readOwnPackage().version;
/** The manifest format amibundle writes (and the newest it reads). */
export const manifestVersion = '2007-10-10';
/** The ec2-ami-tools release whose command lines and formats amibundle reproduces. */
export const compatibleAmiToolsVersion = '1.5.3';
