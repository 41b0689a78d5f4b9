import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import type { PartDigests, PartSink, StoredPart } from '../../src/parts/part-sink.js';
import { PartSplitter } from '../../src/parts/part-splitter.js';
import { partCount, partName } from '../../src/format/part-name.js';

describe('part names follow the width of the part count', () => {
  const cases: [number, string, string][] = [
    [1, 'x.part.0', 'x.part.0'],
    [9, 'x.part.0', 'x.part.8'],
    [10, 'x.part.00', 'x.part.09'],
    [99, 'x.part.00', 'x.part.98'],
    [100, 'x.part.000', 'x.part.099'],
    [101, 'x.part.000', 'x.part.100'],
    [1000, 'x.part.0000', 'x.part.0999'],
  ];
  for (const [count, first, last] of cases)
    it(`${count} parts`, () => {
      expect(partName('x', 0, count)).toBe(first);
      expect(partName('x', count - 1, count)).toBe(last);
    });
  it('counts parts without an empty last one', () => {
    expect(partCount(16)).toBe(1);
    expect(partCount(10 * 1024 * 1024)).toBe(1);
    expect(partCount(10 * 1024 * 1024 + 16)).toBe(2);
  });
});

class MemorySink implements PartSink {
  readonly description = 'memory';
  readonly parts = new Map<number, Buffer[]>();
  readonly closed: PartDigests[] = [];
  async openPart(index: number) {
    const chunks: Buffer[] = [];
    this.parts.set(index, chunks);
    return {
      write: async (c: Buffer) => {
        chunks.push(Buffer.from(c));
      },
      close: async (d: PartDigests) => {
        this.closed.push(d);
      },
    };
  }
  async commit(_p: readonly StoredPart[]) {
    return 'memory';
  }
  async abort() {}
}

async function split(
  total: number,
  partSize: number,
  chunk: number,
): Promise<{ sink: MemorySink; data: Buffer }> {
  const data = crypto.randomBytes(total);
  const sink = new MemorySink();
  const chunks: Buffer[] = [];
  for (let i = 0; i < total; i += chunk) chunks.push(data.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), new PartSplitter(sink, undefined, partSize));
  return { sink, data };
}

describe('the part splitter', () => {
  for (const [total, partSize, chunk, count] of [
    [160, 160, 48, 1],
    [176, 160, 48, 2],
    [320, 160, 1000, 2],
    [16, 160, 16, 1],
    [1600, 160, 7, 10],
  ] as const)
    it(`${total} bytes in ${partSize}-byte parts (chunks of ${chunk}) -> ${count} parts`, async () => {
      const { sink, data } = await split(total, partSize, chunk);
      expect(sink.parts.size).toBe(count);
      const joined = Buffer.concat([...sink.parts.values()].map((c) => Buffer.concat(c)));
      expect(joined.equals(data)).toBe(true);
      sink.closed.forEach((d, i) => {
        const part = Buffer.concat(sink.parts.get(i)!);
        expect(d.size).toBe(part.length);
        expect(d.sha1).toBe(crypto.createHash('sha1').update(part).digest('hex'));
        expect(d.md5).toBe(crypto.createHash('md5').update(part).digest('base64'));
        if (i < count - 1) expect(part.length).toBe(partSize);
      });
    });
});
