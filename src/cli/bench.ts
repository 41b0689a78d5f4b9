// `amibundle bench`: throughput of every pipeline stage alone and of bundle-image/unbundle end to
// end, on a given image or on a generated one, as a table or one JSON document.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeBenchKeys } from '../bench/bench-keys.js';
import { measureEndToEnd } from '../bench/end-to-end.js';
import { formatReport, type BenchReport, type EndToEndResult } from '../bench/report.js';
import { measureStages, type CompressRun } from '../bench/stages.js';
import { writeSyntheticImage } from '../bench/synthetic-image.js';
import { COMPRESSION_CODECS, LEVEL_RANGE, type CompressionCodec } from '../codec/compression.js';
import { UsageError } from '../errors.js';
import { ownPeakRssBytes } from '../io/peak-rss.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';
import type { ParsedOptions } from './options.js';

const MIB = 1024 * 1024;
/** Levels measured when --levels is not given: each codec's fastest, default, and 9. */
const DEFAULT_LEVELS: Readonly<Record<CompressionCodec, readonly number[]>> = {
  gzip: [1, 6, 9],
  zstd: [1, 3, 9],
};

function intOption(opts: ParsedOptions, name: string, min: number, max: number): number {
  const v = opts.int(name)!;
  if (v < min || v > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${v})`);
  return v;
}

export function parseCodecs(items: readonly string[]): CompressionCodec[] {
  if (items.length === 0) return [...COMPRESSION_CODECS];
  const out: CompressionCodec[] = [];
  for (const item of items) {
    const codec = item.toLowerCase();
    if (!(COMPRESSION_CODECS as readonly string[]).includes(codec))
      throw new UsageError(`--codecs has invalid value '${item}': use gzip, zstd or both (gzip,zstd)`);
    if (!out.includes(codec as CompressionCodec)) out.push(codec as CompressionCodec);
  }
  return out;
}

/** `--levels`: `N` applies to each selected codec whose range holds N; `CODEC:N` to that codec only. */
export function parseLevels(items: readonly string[], codecs: readonly CompressionCodec[]): CompressRun[] {
  const runs: CompressRun[] = [];
  const add = (codec: CompressionCodec, level: number): void => {
    if (!runs.some((r) => r.codec === codec && r.level === level)) runs.push({ codec, level });
  };
  if (items.length === 0) {
    for (const codec of codecs) for (const level of DEFAULT_LEVELS[codec]) add(codec, level);
  }
  for (const item of items) {
    const m = /^(?:(gzip|zstd):)?(\d+)$/i.exec(item);
    if (!m) throw new UsageError(`--levels has invalid value '${item}': give levels like 1,6,9 or zstd:3`);
    const level = Number(m[2]);
    const named = m[1]?.toLowerCase() as CompressionCodec | undefined;
    if (named && !codecs.includes(named))
      throw new UsageError(`--levels names ${named}, which --codecs leaves out`);
    const targets = (named ? [named] : codecs).filter(
      (c) => level >= LEVEL_RANGE[c].min && level <= LEVEL_RANGE[c].max,
    );
    if (targets.length === 0)
      throw new UsageError(
        `--levels has invalid value '${item}': ${(named ? [named] : codecs).map((c) => `${c} takes ${LEVEL_RANGE[c].min}-${LEVEL_RANGE[c].max}`).join(', ')}`,
      );
    for (const c of targets) add(c, level);
  }
  const order = (c: CompressionCodec): number => codecs.indexOf(c);
  return runs.sort((a, b) => order(a.codec) - order(b.codec) || a.level - b.level);
}

export const benchCommand: Command = {
  spec: {
    name: 'bench',
    summary: 'Measure the throughput of every bundling stage and of bundle-image/unbundle end to end.',
    options: [
      flag('image', { default: 'a generated image (--size, --fill)', help: 'The disk image to measure on.' }),
      {
        name: 'size',
        long: 'size',
        kind: 'int',
        metavar: 'MIB',
        defaultValue: 1024,
        help: 'Apparent size of the generated image, in MiB (without -i).',
      },
      {
        name: 'fill',
        long: 'fill',
        kind: 'int',
        metavar: 'PCT',
        defaultValue: 65,
        help: 'Percentage of the generated image that holds data; the rest are holes (without -i).',
      },
      {
        name: 'codecs',
        long: 'codecs',
        kind: 'list',
        metavar: 'LIST',
        default: 'gzip,zstd',
        help: 'Codecs to measure.',
      },
      {
        name: 'levels',
        long: 'levels',
        kind: 'list',
        metavar: 'LIST',
        default: 'gzip 1,6,9 and zstd 1,3,9',
        help: 'Compression levels: N for every codec whose range holds it, CODEC:N for one codec.',
      },
      flag('threads', { help: 'Compression threads (stages and end-to-end runs).' }),
      {
        name: 'sample-mib',
        long: 'sample-mib',
        kind: 'int',
        metavar: 'N',
        defaultValue: 256,
        help: 'MiB of image data held in memory for the per-stage measurements.',
      },
      {
        name: 'tmp',
        long: 'tmp',
        kind: 'string',
        metavar: 'DIR',
        path: 'dir',
        defaultValue: os.tmpdir(),
        default: 'the system temporary directory',
        help: 'Where the generated image, the write stage, bundles and restored images go (removed after).',
      },
      {
        name: 'endToEnd',
        long: 'end-to-end',
        kind: 'flag',
        negatable: true,
        defaultValue: true,
        help: 'Also bundle and unbundle the whole image with the CLI (one run per codec at its default level).',
      },
      {
        name: 'ec2Layout',
        long: 'ec2-layout',
        kind: 'flag',
        negatable: true,
        defaultValue: true,
        help: 'End to end, also unbundle the image bundled in the ec2-ami-tools layout (tar -cS | gzip -9 | openssl enc).',
      },
    ],
    examples: [
      'amibundle bench',
      'amibundle bench -i disk.img --levels 6 --codecs gzip --json',
      'amibundle bench -i disk.img --no-ec2-layout',
      'amibundle bench --size 4096 --fill 30 --sample-mib 512 --tmp /var/tmp',
    ],
    manual: `Measures where the time of a bundle goes, on this machine.

Stages: the first --sample-mib MiB of the image's data is read once (read+extents: the real
SEEK_DATA/SEEK_HOLE plan of the whole image plus 1 MiB reads of the sample), framed into a tar
stream in memory, and then each stage runs alone, on in-memory data, with amibundle's own code:
tar (includes SHA-1, which tarStream computes as it frames), SHA-1, compress for every codec and
level (size and ratio too), AES-128-CBC encrypt, split into 10 MiB parts with SHA-1 and MD5, decrypt,
inflate (gunzip and zstd; the output is checked against the tar stream's SHA-1), and write (the
sample's data into a sparse file under --tmp, as unbundle writes; page cache, no fsync). Reads
may come from the page cache when the image was read or written recently. Each stage gets its
input in the chunk sizes the pipeline uses; compress is driven by bundle-image's own feeding code,
with the chunks tarStream yielded (tar header, 1 MiB reads, trailer), and only the cipher and part
splitter after it are replaced by a collector. What a stage produces is copied into memory mapped
before the clock started, so no stage pays for keeping its output. The sample, its tar stream
and the compressed copies take about 4 to 5 times --sample-mib of memory.

End to end: 'amibundle bundle-image' and 'amibundle unbundle' of the whole image run as child
processes, once per codec at its default level (gzip 6, zstd 3), with throw-away keys generated
into a private directory. Then 'amibundle unbundle' of the same image bundled in the ec2-ami-tools
layout, the bundles people rescue: made (untimed) by the system's 'tar -cS | gzip -9 | openssl enc
-aes-128-cbc', one gzip member without amibundle's piece marks, cut into 10 MiB parts with a
signed manifest; gzip -9 takes about a minute per GiB of data, --no-ec2-layout leaves it out, and
when tar, gzip or openssl is missing the row is skipped with one line saying so. Wall time is
measured; CPU time and peak RSS are what each child reports about itself in the 'resources' field
of its JSON 'done' event. Every restored image is hashed and must equal the image (SHA-1, reported
as restoredSha1). --no-end-to-end skips them all.

Without -i, a deterministic synthetic image of --size MiB is generated under --tmp: --fill percent
of its 1 MiB slots, spread evenly, hold data and the rest are holes; the data is about 72% word-like
text, 12% incompressible bytes and 16% zeros (gzip -6 makes it about a third of its size, like a
real system image). Needs free space for it, a bundle and a restored copy.

MB/s are 10^6 bytes per second of a stage's input; data MB/s are tar-stream (image data) bytes
per second, so stages that see compressed data can be compared with the rest. CPU % counts every
thread of the process, so it exceeds 100% when several cores work. wait % (cpuWaitPercent) is the
time the process's threads were ready to run but waited for a core, summed over threads, from
Linux's schedstat: other processes on the machine cause it, and where it is high a stage's MB/s
and CPU % describe the machine's load rather than the stage (on 2 cores, a compress stage with 2
threads that shows 100% CPU and 100% wait got one core, not two). --json prints the progress
lines, one 'stage' and one 'end-to-end' event per measurement ('layout' tells amibundle's bundles
from the ec2-ami-tools layout), a warning per skipped row, and a final 'done' event whose 'report'
holds everything. Nothing is kept: every file is removed at the end.`,
  },

  async run(opts, ctx) {
    const loadStart = os.loadavg();
    const imageGiven = opts.str('image');
    if (imageGiven !== undefined && (opts.has('size') || opts.has('fill')))
      throw new UsageError('--size and --fill describe a generated image: leave them out with -i');
    const sizeMiB = intOption(opts, 'size', 1, 16 * 1024 * 1024);
    const fill = intOption(opts, 'fill', 1, 100);
    const sampleMiB = intOption(opts, 'sample-mib', 1, 64 * 1024);
    const threads = intOption(opts, 'threads', 1, 256);
    const codecs = parseCodecs(opts.list('codecs'));
    const compress = parseLevels(opts.list('levels'), codecs);
    const endToEnd = opts.flag('endToEnd');
    const tmp = opts.str('tmp')!;

    const workDir = await fs.promises.mkdtemp(path.join(tmp, 'amibundle-bench-'));
    try {
      let imagePath: string;
      if (imageGiven !== undefined) {
        imagePath = path.resolve(imageGiven);
      } else {
        imagePath = path.join(workDir, 'bench.img');
        ctx.out.info(`Generating a ${sizeMiB} MiB sparse image, ${fill}% data, in ${workDir}...`);
        await writeSyntheticImage(imagePath, sizeMiB, fill, ctx.signal);
      }
      ctx.out.event({
        type: 'start',
        command: 'bench',
        image: imagePath,
        generated: imageGiven === undefined,
      });

      const staged = await measureStages({
        imagePath,
        sampleBytes: sampleMiB * MIB,
        compress,
        threads,
        workDir,
        signal: ctx.signal,
        onStage: (s) => ctx.out.event({ type: 'stage', ...s }),
        onProgress: (line) => ctx.out.info(line),
      });

      let e2e: EndToEndResult[] = [];
      const skipped: string[] = [];
      if (endToEnd) {
        const keyDir = await fs.promises.mkdtemp(path.join(workDir, 'keys-'));
        e2e = await measureEndToEnd({
          imagePath,
          imageBytes: staged.image.size,
          workDir,
          keys: await writeBenchKeys(keyDir),
          codecs,
          threads,
          ec2Layout: opts.flag('ec2Layout'),
          signal: ctx.signal,
          onResult: (r) => ctx.out.event({ type: 'end-to-end', ...r }),
          onProgress: (line) => ctx.out.info(line),
          onSkip: (line) => {
            skipped.push(line);
            ctx.out.warn(line);
          },
        });
      }

      const report: BenchReport = {
        image: { ...staged.image, path: imagePath, generated: imageGiven === undefined },
        sample: staged.sample,
        threads,
        cpus: os.availableParallelism(),
        node: process.version,
        loadAverage: { start: loadStart, end: os.loadavg() },
        stages: staged.stages,
        endToEnd: e2e,
        skipped,
        peakRssBytes: ownPeakRssBytes(),
      };
      if (ctx.out.mode === 'text') {
        ctx.out.info('');
        for (const line of formatReport(report)) ctx.out.info(line);
      }
      ctx.out.event({ type: 'done', command: 'bench', report });
    } finally {
      await fs.promises.rm(workDir, { recursive: true, force: true });
    }
  },
};
