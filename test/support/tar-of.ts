// Our tar stream for a file, collected in memory (small test files only).
import fs from 'node:fs';
import path from 'node:path';
import type { SparseMode } from '../../src/bundle/bundle-options.js';
import { planImage } from '../../src/bundle/image-plan.js';
import { tarStream, type TarStreamResult } from '../../src/bundle/tar-stream.js';

export async function tarOf(
  file: string,
  sparse: SparseMode = 'fs',
  name = path.basename(file),
): Promise<{ bytes: Buffer; digest: string }> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const plan = await planImage(fh, file, sparse);
    const result: TarStreamResult = { digest: '', length: 0 };
    const chunks: Buffer[] = [];
    for await (const c of tarStream(
      fh,
      {
        name,
        mode: plan.mode,
        mtime: plan.mtime,
        size: plan.size,
        ...(plan.sparseMap ? { sparseMap: plan.sparseMap } : {}),
      },
      plan.extents,
      result,
    ))
      chunks.push(c);
    return { bytes: Buffer.concat(chunks), digest: result.digest };
  } finally {
    await fh.close();
  }
}
