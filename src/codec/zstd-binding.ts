// zstd-napi's native binding, loaded on first use only: gzip bundles never need it, and it is
// missing wherever its install script did not run (npm --ignore-scripts, the single executable).
import { createRequire } from 'node:module';
import { AmiError } from '../errors.js';

export type ZstdBinding = typeof import('zstd-napi/binding.js');

let zstd: { binding?: ZstdBinding; file?: string; error?: string } | undefined;

/** zstd-napi's binding (and the file to require in a worker), or one line saying how to get it. */
export function zstdBinding(): { binding: ZstdBinding; file: string } {
  if (!zstd) {
    try {
      const require = createRequire(import.meta.url);
      const file = require.resolve('zstd-napi/binding.js');
      zstd = { binding: require(file) as ZstdBinding, file };
    } catch (err) {
      zstd = { error: (err instanceof Error ? err.message : String(err)).split('\n')[0] };
    }
  }
  if (zstd.binding && zstd.file) return { binding: zstd.binding, file: zstd.file };
  throw new AmiError(
    `zstd is not available: zstd-napi's native binding did not load (${zstd.error})`,
    undefined,
    inSingleExecutable()
      ? 'the single executable carries no zstd: use gzip (the default), or amibundle installed with npm for zstd bundles'
      : "run 'npm rebuild zstd-napi' in amibundle's install directory (its install script builds it), or use gzip, the default",
  );
}

/** True inside the single executable (Node's SEA), where npm's advice does not apply. */
function inSingleExecutable(): boolean {
  try {
    const require = createRequire(import.meta.url);
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false;
  }
}
