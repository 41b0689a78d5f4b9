// The restore's decryption in place: parts whose lengths are not whole AES blocks (no bundler
// writes them, but a manifest may list any) still restore byte for byte, across part boundaries
// that split a block; and unbundle's JSON `done` event says where the time went, stage by stage.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberInfo } from '../../src/format/tar-header.js';
import { tarOfMembers, unbundleCrafted } from '../support/craft-bundle.js';
import { tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('restore-stages');
});
afterAll(() => tmp.remove());

const member = (size: number): MemberInfo => ({ name: 'img', mode: 0o644, mtime: 1400000000, size });

async function restore(data: Buffer, partSize: number, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const work = fs.mkdtempSync(path.join(tmp.dir, `p${partSize}-`));
  const tar = tarOfMembers([{ info: member(data.length), data }]);
  const { r, bundle, dest } = await unbundleCrafted(work, tar, {
    partSize,
    size: data.length,
    tool: 'amibundle',
    extra,
    env,
  });
  return { r, image: path.join(dest, 'img'), parts: fs.readdirSync(bundle).length - 1 };
}

describe('restore decrypts parts in place', () => {
  it('parts of 7 bytes (most smaller than an AES block) restore the image exactly', async () => {
    const data = Buffer.alloc(3000, 0x61);
    const { r, image, parts } = await restore(data, 7);
    expect(r.code, r.stderr).toBe(0);
    expect(parts).toBeGreaterThan(5);
    expect(Buffer.compare(fs.readFileSync(image), data)).toBe(0);
  });

  it('parts of 1,000,003 bytes (block boundaries split between parts) restore the image exactly', async () => {
    const data = crypto.randomBytes(3 * 1024 * 1024);
    const { r, image, parts } = await restore(data, 1_000_003);
    expect(r.code, r.stderr).toBe(0);
    expect(parts).toBe(4);
    expect(Buffer.compare(fs.readFileSync(image), data)).toBe(0);
  });
});

function doneStages(stdout: string) {
  const done = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e['type'] === 'done')!;
  return {
    wall: done['seconds'] as number,
    stages: done['stages'] as { stage: string; busySeconds?: number; cpuSeconds?: number }[],
  };
}

describe("unbundle's done event", () => {
  it('counts the fallbacks that work synchronously (no addon: SHA-1 and AES on the event loop)', async () => {
    const data = crypto.randomBytes(4 * 1024 * 1024);
    const { r } = await restore(data, 10 * 1024 * 1024, ['--json'], { AMIBUNDLE_NO_NATIVE: '1' });
    expect(r.code, r.stderr).toBe(0);
    const { stages } = doneStages(r.stdout);
    for (const name of ['SHA-1 of parts', 'decrypt', 'SHA-1 of tar'])
      expect(stages.find((s) => s.stage === name)?.busySeconds, name).toBeGreaterThan(0);
  });

  it('carries each restore stage with its busy seconds, and the threads with their CPU seconds', async () => {
    const data = crypto.randomBytes(2 * 1024 * 1024);
    const { r } = await restore(data, 10 * 1024 * 1024, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    const { wall, stages } = doneStages(r.stdout);
    expect(stages.map((s) => s.stage)).toEqual([
      'read parts',
      'SHA-1 of parts',
      'decrypt',
      'inflate',
      'SHA-1 of tar',
      'untar+write',
      'main thread',
      'other threads',
    ]);
    for (const s of stages.slice(0, 7)) {
      expect(s.busySeconds, s.stage).toBeGreaterThan(0);
      // Busy time is wall time with work under way: never more than the run itself.
      expect(s.busySeconds!, s.stage).toBeLessThanOrEqual(wall + 0.05);
    }
    expect(stages.at(-2)!.cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(stages.at(-1)!.cpuSeconds).toBeGreaterThanOrEqual(0);
  });
});
