// One SIGTERM (or SIGINT) ends any command promptly: the run cleans up and exits 255, and if the
// clean-up itself cannot finish (here: the server stops answering, so deleting what the run
// stored hangs), the process exits anyway with 128 + the signal number instead of hanging.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../support/capture-server.js';
import { keysDir, projectRoot, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
let server: CaptureServer;
beforeAll(async () => {
  tmp = tempDir('signals');
  // Answers the bucket checks, then never answers an object upload or a deletion.
  server = await startCaptureServer({
    bucketLocation: '',
    handle: (req) => {
      const parts = new URL(req.url ?? '/', 'http://x').pathname.split('/').filter(Boolean);
      return (req.method === 'PUT' && parts.length > 1) || req.method === 'POST' || req.method === 'DELETE';
    },
  });
});
afterAll(async () => {
  await server.close();
  tmp.remove();
});

describe('signals', () => {
  it('one SIGTERM ends bundle-image --upload even when its clean-up hangs: exit 143', async () => {
    const image = path.join(tmp.dir, 'img');
    fs.writeFileSync(image, crypto.randomBytes(3 * 1024 * 1024));
    const child = spawn(
      process.execPath,
      [
        path.join(projectRoot, 'bin/amibundle.js'),
        'bundle-image',
        ...['-i', image, '-k', path.join(keysDir, 'user-key.pem'), '-c', path.join(keysDir, 'user-cert.pem')],
        ...['-u', '123456789012', '-r', 'x86_64', '--batch', '--ec2cert', path.join(keysDir, 'ec2-cert.pem')],
        ...[
          '--upload',
          's3://stalled/img',
          '--url',
          server.endpoint,
          '--access-key',
          'AK',
          '--secret-key',
          'SK',
        ],
      ],
      { cwd: tmp.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    // A correctness bound, not a timing: a process that never exits is killed and fails here.
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const stalled = (): boolean =>
        server.requests.some((r) => r.method === 'PUT' && r.url.split('?')[0]!.split('/').length > 2);
      for (let i = 0; i < 300 && !stalled(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(stalled()).toBe(true);
      child.kill('SIGTERM');
      const { code, signal } = await closed;
      expect(signal, stderr).toBeNull();
      expect(code, stderr).toBe(143);
      expect(stderr).toContain('interrupted by SIGTERM');
      expect(fs.readdirSync(tmp.dir).filter((f) => f.startsWith('.'))).toEqual([]);
    } finally {
      clearTimeout(killer);
    }
  });

  it('one SIGTERM during unbundle ends it and leaves nothing in the destination', async () => {
    const image = path.join(tmp.dir, 'big');
    fs.writeFileSync(image, crypto.randomBytes(48 * 1024 * 1024));
    const bundle = path.join(tmp.dir, 'bundle');
    const dest = path.join(tmp.dir, 'dest');
    fs.mkdirSync(bundle);
    fs.mkdirSync(dest);
    const key = path.join(keysDir, 'user-key.pem');
    const b = spawnSync(
      process.execPath,
      [
        path.join(projectRoot, 'bin/amibundle.js'),
        'bundle-image',
        ...['-i', image, '-d', bundle, '-k', key, '-c', path.join(keysDir, 'user-cert.pem')],
        ...['-u', '123456789012', '-r', 'x86_64', '--batch', '--ec2cert', path.join(keysDir, 'ec2-cert.pem')],
      ],
      { encoding: 'utf8' },
    );
    expect(b.status, b.stderr).toBe(0);
    const child = spawn(
      process.execPath,
      [
        path.join(projectRoot, 'bin/amibundle.js'),
        'unbundle',
        ...['-m', path.join(bundle, 'big.manifest.xml'), '-k', key, '-s', bundle, '-d', dest],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    try {
      const writing = (): boolean =>
        fs.readdirSync(dest).some((f) => fs.statSync(path.join(dest, f)).size > 0);
      for (let i = 0; i < 500 && !writing() && child.exitCode === null; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(writing()).toBe(true);
      child.kill('SIGTERM');
      const { code, signal } = await closed;
      expect(signal, stderr).toBeNull();
      // 255 when the clean-up finished in time, 143 when the exit hook finished it.
      expect([255, 143], stderr).toContain(code);
      expect(fs.readdirSync(dest)).toEqual([]);
    } finally {
      clearTimeout(killer);
    }
  });
});
