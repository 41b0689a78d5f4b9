// Version facts shared by `--version`, ec2-ami-tools-version and the manifest's <bundler>.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pkg = require('../package.json') as { version: string };

export const toolVersion: string = pkg.version;
/** The manifest format amibundle writes (and the newest it reads). */
export const manifestVersion = '2007-10-10';
/** The ec2-ami-tools release whose command lines and formats amibundle reproduces. */
export const compatibleAmiToolsVersion = '1.5.3';
