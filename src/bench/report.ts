// The shape of `amibundle bench` results (also its --json document) and the text tables.
import type { CompressionCodec } from '../codec/compression.js';
import { formatBytes } from '../format-bytes.js';

export type StageName =
  'read+extents' | 'tar' | 'sha1' | 'compress' | 'encrypt' | 'split+hash' | 'decrypt' | 'inflate' | 'write';

export interface StageResult {
  readonly stage: StageName;
  readonly codec?: CompressionCodec;
  readonly level?: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly cpuPercent: number;
  /**
   * Time this process's threads were ready to run but waited for a CPU, summed over threads, as %
   * of the stage's wall time (Linux schedstat; absent elsewhere). Other processes on the machine
   * cause it: high values mean the stage's MB/s and CPU % describe the machine's load.
   */
  readonly cpuWaitPercent?: number;
  readonly inputBytes: number;
  readonly outputBytes: number;
  /** Input bytes per second, in MB/s. */
  readonly mbPerSecond: number;
  /** Tar-stream bytes this stage handles per second (compressed stages scaled back up), MB/s. */
  readonly dataMbPerSecond: number;
  /** Output / input, for compression. */
  readonly ratio?: number;
  readonly note?: string;
}

export interface EndToEndResult {
  readonly command: 'bundle-image' | 'unbundle';
  readonly codec: CompressionCodec;
  readonly level: number;
  /**
   * Whose bundle: amibundle's own (bundle-image), or ec2-ami-tools' layout (`tar -cS | gzip -9 |
   * openssl enc`, one gzip member without piece marks) made with the system's tools.
   */
  readonly layout: 'amibundle' | 'ec2-ami-tools';
  readonly seconds: number;
  readonly userSeconds: number;
  readonly systemSeconds: number;
  readonly cpuPercent: number;
  /** Peak resident set size of the child process. */
  readonly maxRssBytes: number;
  /** Apparent size of the image. */
  readonly imageBytes: number;
  /** Bytes of data in the image (what is read and archived). */
  readonly dataBytes: number;
  /** Image data per second of wall time, MB/s. */
  readonly dataMbPerSecond: number;
  /** Total size of the parts. */
  readonly bundledBytes: number;
  readonly parts: number;
  /** unbundle: SHA-1 of the restored image, checked equal to the image's own before reporting. */
  readonly restoredSha1?: string;
}

export interface BenchReport {
  readonly image: {
    readonly path: string;
    readonly generated: boolean;
    readonly size: number;
    readonly dataBytes: number;
    readonly extents: number;
    /** Written as a GNU sparse member (the file has holes). */
    readonly sparse: boolean;
  };
  readonly sample: {
    readonly dataBytes: number;
    readonly tarBytes: number;
    readonly extents: number;
    /** SHA-1 of the sample's tar stream. */
    readonly digest: string;
  };
  readonly threads: number;
  readonly cpus: number;
  readonly node: string;
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly stages: readonly StageResult[];
  readonly endToEnd: readonly EndToEndResult[];
  /** One line per end-to-end run that could not be made here, and why. */
  readonly skipped: readonly string[];
  /** Peak RSS of the bench process itself (it holds the sample and its compressed copies). */
  readonly peakRssBytes: number;
}

/** `bundle-image gzip:6`, `unbundle zstd:3`, `unbundle gzip:9 ec2-ami-tools layout`. */
export function runLabel(e: Pick<EndToEndResult, 'command' | 'codec' | 'level' | 'layout'>): string {
  return `${e.command} ${e.codec}:${e.level}${e.layout === 'ec2-ami-tools' ? ' ec2-ami-tools layout' : ''}`;
}

export function stageLabel(s: Pick<StageResult, 'stage' | 'codec' | 'level'>): string {
  if (s.stage === 'compress') return `compress ${s.codec}:${s.level}`;
  if (s.stage === 'inflate') return `inflate ${s.codec}`;
  return s.stage;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const f1 = (n: number): string => n.toFixed(1);
const pct = (n: number): string => `${Math.round(n)}%`;

export function formatReport(r: BenchReport): string[] {
  const lines: string[] = [];
  const img = r.image;
  lines.push(
    `Image: ${img.path}${img.generated ? ' (generated)' : ''}: ${formatBytes(img.size)} apparent, ${formatBytes(img.dataBytes)} of data in ${img.extents} extent(s)${img.sparse ? ', sparse' : ''}`,
    `Sample: the first ${formatBytes(r.sample.dataBytes)} of data, ${formatBytes(r.sample.tarBytes)} of tar stream, held in memory; ${r.threads} thread(s), ${r.cpus} CPU(s), Node ${r.node}, load average ${r.loadAverage.start.map((l) => l.toFixed(2)).join(' ')}`,
    '',
    'Stages, each alone on the in-memory sample (MB = 10^6 bytes; data MB/s = tar-stream bytes per second;',
    'CPU % is this process: above 100% means several cores; wait % is time its threads were ready but',
    "waited for a core other processes held: where it is high, the row measures the machine's load):",
  );
  lines.push(
    ...table(
      ['stage', 'seconds', 'MB/s', 'data MB/s', 'CPU %', 'wait %', 'input', 'output', 'notes'],
      r.stages.map((s) => [
        stageLabel(s),
        s.seconds.toFixed(3),
        f1(s.mbPerSecond),
        f1(s.dataMbPerSecond),
        pct(s.cpuPercent),
        s.cpuWaitPercent !== undefined ? pct(s.cpuWaitPercent) : '-',
        formatBytes(s.inputBytes),
        formatBytes(s.outputBytes),
        [s.ratio !== undefined ? `ratio ${s.ratio.toFixed(3)}` : '', s.note ?? ''].filter(Boolean).join('; '),
      ]),
    ),
  );
  if (r.endToEnd.length > 0) {
    lines.push(
      '',
      'End to end on the whole image (child processes; data MB/s = image data per wall second; peak RSS of the child):',
    );
    lines.push(
      ...table(
        ['run', 'seconds', 'data MB/s', 'CPU s', 'CPU %', 'peak RSS', 'bundle', 'notes'],
        r.endToEnd.map((e) => [
          runLabel(e),
          e.seconds.toFixed(2),
          f1(e.dataMbPerSecond),
          (e.userSeconds + e.systemSeconds).toFixed(2),
          pct(e.cpuPercent),
          formatBytes(e.maxRssBytes),
          formatBytes(e.bundledBytes),
          [
            `${e.parts} part(s)`,
            e.layout === 'ec2-ami-tools' ? 'made by tar -cS | gzip -9 | openssl enc' : '',
            e.restoredSha1 ? 'restored image SHA-1 checked' : '',
          ]
            .filter(Boolean)
            .join('; '),
        ]),
      ),
    );
  }
  for (const line of r.skipped) lines.push(`Skipped: ${line}`);
  lines.push(
    '',
    `Peak RSS of this benchmark process: ${formatBytes(r.peakRssBytes)}; load average at the end ${r.loadAverage.end.map((l) => l.toFixed(2)).join(' ')}`,
  );
  return lines;
}
