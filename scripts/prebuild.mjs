#!/usr/bin/env node
// prepack: compiles the N-API addon and puts it in prebuilds/linux-x64/amibundle.node, so the
// package installs on x86-64 Linux (glibc) without a compiler. The addon opens zlib, libdeflate,
// ISA-L and OpenSSL with dlopen at run time, so one build serves every such machine. On other
// platforms the package carries no prebuilt and `npm install` compiles it there.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.join(root, 'prebuilds', 'linux-x64', 'amibundle.node');

fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
const glibc = process.report?.getReport()?.header?.glibcVersionRuntime;
if (process.platform !== 'linux' || process.arch !== 'x64' || glibc === undefined) {
  console.warn(`prebuild: no prebuilt addon for ${process.platform}-${process.arch}; installs compile it`);
  process.exit(0);
}
// Any build problem fails the pack: a package without its prebuilt must not be published unnoticed.
execFileSync(process.execPath, [path.join(root, 'native', 'build.mjs')], {
  stdio: 'inherit',
  env: { ...process.env, AMIBUNDLE_NATIVE_STRICT: '1' },
});
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(path.join(root, 'native', 'build', 'Release', 'amibundle_native.node'), target);
console.warn(`prebuild: ${path.relative(root, target)} (glibc ${glibc})`);
