#!/usr/bin/env node
// prepack: compiles the N-API addon and puts it in prebuilds/linux-x64/amibundle.node, so the
// package installs on x86-64 Linux (glibc) without a compiler. The addon opens zlib, libdeflate,
// ISA-L and OpenSSL with dlopen at run time, so one build serves every such machine. On other
// platforms the package carries no prebuilt and `npm install` compiles it there. The build runs
// on a private copy of native/, so the addon in native/build (which tests may be loading) is never
// rebuilt under them, and the result is renamed into place whole.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.join(root, 'prebuilds', 'linux-x64', 'amibundle.node');

const glibc = process.report?.getReport()?.header?.glibcVersionRuntime;
if (process.platform !== 'linux' || process.arch !== 'x64' || glibc === undefined) {
  fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  console.warn(`prebuild: no prebuilt addon for ${process.platform}-${process.arch}; installs compile it`);
  process.exit(0);
}
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-prebuild-'));
try {
  const copy = path.join(work, 'native');
  fs.mkdirSync(copy);
  for (const f of fs.readdirSync(path.join(root, 'native')))
    if (/\.(c|h|gyp|mjs)$/.test(f)) fs.copyFileSync(path.join(root, 'native', f), path.join(copy, f));
  // Any build problem fails the pack: a package without its prebuilt must not go out unnoticed.
  execFileSync(process.execPath, [path.join(copy, 'build.mjs')], {
    stdio: 'inherit',
    env: { ...process.env, AMIBUNDLE_NATIVE_STRICT: '1' },
  });
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const temp = `${target}.${process.pid}`;
  fs.copyFileSync(path.join(copy, 'build', 'Release', 'amibundle_native.node'), temp);
  fs.renameSync(temp, target);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
console.warn(`prebuild: ${path.relative(root, target)} (glibc ${glibc})`);
