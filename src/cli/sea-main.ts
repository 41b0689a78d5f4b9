// Entry of the single executable (dist/amibundle-linux-x64, made by scripts/build-sea.mjs): Node
// with this program, the addon and the files it reads at run time (package.json, certs/) carried
// as assets. The bundle's banner writes those assets into a private directory (mode 0700, removed
// at exit) laid out like the package, so the code finds them where it always does; here the addon
// is loaded from there with process.dlopen and handed to io/native.ts. Started through a link with
// a drop-in name (ec2-bundle-vol, …) it acts as that tool.
import path from 'node:path';
import { registerAddon } from '../io/native.js';
import { finish, mainByName } from './main.js';

const root = (globalThis as { __amibundleSeaRoot?: string }).__amibundleSeaRoot;
if (root !== undefined) {
  const file = path.join(root, 'prebuilds', 'linux-x64', 'amibundle.node');
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, file);
    registerAddon(module.exports, file);
  } catch (err) {
    registerAddon(undefined, `${file} (${err instanceof Error ? err.message : String(err)})`);
  }
}

// argv0 keeps the name the program was started under (the link's), execPath the resolved binary.
finish(mainByName(path.basename(process.argv0), process.argv.slice(2)));
