// --json: every line on stdout of a whole run is one JSON event with a type and a time, in the
// documented schema; errors are an event too, with the exit code.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { keysDir, tempDir } from '../support/fixtures.js';

interface Event {
  type: string;
  time: string;
  [key: string]: unknown;
}

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('json');
});
afterAll(() => tmp.remove());

function events(stdout: string): Event[] {
  const lines = stdout.trim().split('\n');
  return lines.map((line) => {
    const e = JSON.parse(line) as Event;
    expect(typeof e.type).toBe('string');
    expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    return e;
  });
}

describe('--json event streams', () => {
  it('bundle-image, verify and unbundle of a two-part bundle', async () => {
    const image = path.join(tmp.dir, 'events.img');
    fs.writeFileSync(image, crypto.randomBytes(11 * 1024 * 1024));
    const dest = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(dest);
    const k = path.join(keysDir, 'user-key.pem');
    const c = path.join(keysDir, 'user-cert.pem');
    const b = await runCli('amibundle', [
      'bundle-image',
      '-i',
      image,
      '-k',
      k,
      '-c',
      c,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '--ec2cert',
      path.join(keysDir, 'ec2-cert.pem'),
      '-d',
      dest,
      '--batch',
      '--json',
    ]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toBe('');
    const be = events(b.stdout);
    expect(be[0]!.type).toBe('start');
    const parts = be.filter((e) => e.type === 'part');
    expect(parts.map((p) => p.index)).toEqual([0, 1]);
    for (const p of parts) expect(p.sha1).toMatch(/^[0-9a-f]{40}$/);
    // Text lines a person would read come as `info` events; `done` is the last of the rest.
    const done = be.filter((e) => e.type !== 'info').at(-1)!;
    expect(done.type).toBe('done');
    expect(done.manifest).toBe(path.join(dest, 'events.img.manifest.xml'));
    expect(done.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(done.parts).toBe(2);
    expect((done.resources as { maxRssBytes: number }).maxRssBytes).toBeGreaterThan(0);

    const v = await runCli('amibundle', [
      'verify',
      '-m',
      done.manifest as string,
      '-k',
      k,
      '-c',
      c,
      '--json',
    ]);
    expect(v.code).toBe(0);
    const ve = events(v.stdout);
    expect(ve.filter((e) => e.type === 'part' && e.verified === true)).toHaveLength(2);
    expect(ve.filter((e) => e.type !== 'info').at(-1)).toMatchObject({
      type: 'done',
      ok: true,
      contentsChecked: true,
      digest: done.digest,
    });

    const out = path.join(tmp.dir, 'out');
    fs.mkdirSync(out);
    const u = await runCli('amibundle', [
      'unbundle',
      '-m',
      done.manifest as string,
      '-k',
      k,
      '-s',
      dest,
      '-d',
      out,
      '--json',
    ]);
    expect(u.code).toBe(0);
    const ue = events(u.stdout);
    expect(ue[0]).toMatchObject({ type: 'start', command: 'unbundle', name: 'events.img' });
    expect(ue.filter((e) => e.type !== 'info').at(-1)).toMatchObject({
      type: 'done',
      command: 'unbundle',
      size: 11 * 1024 * 1024,
      digest: done.digest,
    });
  });

  it('a failure is an error event with the exit code, and still only JSON on stdout', async () => {
    const r = await runCli('amibundle', ['verify', '-m', '/nonexistent.xml', '--json']);
    expect(r.code).toBe(2);
    const es = events(r.stdout);
    expect(es).toHaveLength(1);
    expect(es[0]).toMatchObject({ type: 'error', exitCode: 2 });
    expect(es[0]!.message).toMatch(/--manifest has invalid value/);
  });
});
