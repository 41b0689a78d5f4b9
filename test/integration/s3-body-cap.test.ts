// Every GetObject body is read through a cap, whether or not the server sends a length: a
// manifest at most 4 MiB, a part at most min(64 MiB, the bundle's size). A server sending an
// endless chunked body (no Content-Length) gets the object refused by key, and the client stops
// reading near the cap instead of buffering everything.
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES, parseManifest } from '../../src/format/manifest-reader.js';
import { runCli } from '../support/cli.js';
import { startCaptureServer, type CaptureServer } from '../support/capture-server.js';
import { bundledCases, tempDir } from '../support/fixtures.js';

const MiB = 1024 * 1024;
const fixture = bundledCases().find((c) => c.case === 'c-multipart')!;
const manifestFile = path.join(fixture.dir, fixture.expected!.manifest_file);

let server: CaptureServer | undefined;
let work: { dir: string; remove: () => void };
beforeAll(() => {
  work = tempDir('s3-body-cap');
  return () => work.remove();
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * Sends zeros without a Content-Length (chunked) until the client hangs up or `limit` bytes
 * went out; returns a promise of the bytes sent.
 */
function endless(res: http.ServerResponse, limit: number): Promise<number> {
  return new Promise((resolve) => {
    const chunk = Buffer.alloc(64 * 1024);
    let sent = 0;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const pump = (): void => {
      while (sent < limit && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => resolve(sent));
    pump();
  });
}

async function download(objects: Map<string, (res: http.ServerResponse) => void>): Promise<{
  code: number;
  stderr: string;
}> {
  server = await startCaptureServer({
    bucketLocation: '',
    handle: (req, res) => {
      if (req.method !== 'GET') return false;
      const key = new URL(req.url ?? '/', 'http://x').pathname.split('/').slice(2).join('/');
      const serve = objects.get(key);
      if (!serve) return false;
      serve(res);
      return true;
    },
  });
  const down = fs.mkdtempSync(path.join(work.dir, 'down-'));
  return runCli(
    'ec2-download-bundle',
    ['-b', 'capped', '-m', 'multipart.img.manifest.xml', '-d', down, '--url', server.endpoint],
    { env: { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK' }, timeoutMs: 120_000 },
  );
}

describe('S3 body caps', () => {
  it('a manifest body without a length is cut off just past 4 MiB and refused by key', async () => {
    let sent: Promise<number> = Promise.resolve(0);
    const r = await download(
      new Map([['multipart.img.manifest.xml', (res) => void (sent = endless(res, 256 * MiB))]]),
    );
    expect(r.code, r.stderr).toBe(254);
    expect(r.stderr).toMatch(/multipart\.img\.manifest\.xml in bucket capped is larger than 4194304 bytes/);
    // Socket buffers hold a few MiB more than the client read; not the 256 MiB on offer.
    expect(await sent).toBeGreaterThan(MAX_MANIFEST_BYTES);
    expect(await sent).toBeLessThan(MAX_MANIFEST_BYTES + 32 * MiB);
  });

  it('a part body without a length is cut off at the bundle’s size, far below 64 MiB', async () => {
    const manifest = fs.readFileSync(manifestFile);
    const bundled = parseManifest(manifest).manifest.image.bundledSize;
    let sent: Promise<number> = Promise.resolve(0);
    const r = await download(
      new Map<string, (res: http.ServerResponse) => void>([
        ['multipart.img.manifest.xml', (res) => void res.writeHead(200).end(manifest)],
        ['multipart.img.part.0', (res) => void (sent = endless(res, 256 * MiB))],
        ['multipart.img.part.1', (res) => void (sent = endless(res, 256 * MiB))],
      ]),
    );
    expect(r.code, r.stderr).toBe(254);
    expect(r.stderr).toMatch(
      new RegExp(`multipart\\.img\\.part\\.[01] in bucket capped is larger than ${bundled} bytes`),
    );
    expect(await sent).toBeLessThan(bundled + 32 * MiB);
  });
});
