// A small HTTP server on 127.0.0.1 that records every request and answers like S3 just enough
// for a command to run: it checks no signature, so it only serves to look at what goes on the
// wire (headers, order, signing scope).
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CapturedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface CaptureOptions {
  /** What GetBucketLocation answers; undefined = the bucket does not exist (404 NoSuchBucket). */
  bucketLocation?: string | undefined;
  /** What GetBucketOwnershipControls answers; undefined = not set (404). */
  objectOwnership?: string | undefined;
  /**
   * Sees each request first (its body read); returns true when it answered it, or chose never to
   * answer it (a stalled server).
   */
  handle?: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean;
}

export interface CaptureServer {
  readonly endpoint: string;
  readonly requests: CapturedRequest[];
  readonly options: CaptureOptions;
  close(): Promise<void>;
}

function xmlError(res: http.ServerResponse, status: number, code: string): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code></Error>`);
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startCaptureServer(
  options: CaptureOptions = { bucketLocation: '' },
): Promise<CaptureServer> {
  const requests: CapturedRequest[] = [];
  const server = http.createServer((req, res) => {
    void readBody(req).then((body) => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (options.handle?.(req, res, body)) return;
      const url = new URL(req.url ?? '/', 'http://x');
      const pathParts = url.pathname.split('/').filter((p) => p !== '');
      const isBucket = pathParts.length === 1;
      if (req.method === 'GET' && isBucket && url.searchParams.has('location')) {
        if (options.bucketLocation === undefined) return xmlError(res, 404, 'NoSuchBucket');
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.end(
          `<?xml version="1.0" encoding="UTF-8"?><LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${options.bucketLocation}</LocationConstraint>`,
        );
      }
      if (req.method === 'GET' && isBucket && url.searchParams.has('ownershipControls')) {
        if (options.objectOwnership === undefined)
          return xmlError(res, 404, 'OwnershipControlsNotFoundError');
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.end(
          `<?xml version="1.0" encoding="UTF-8"?><OwnershipControls><Rule><ObjectOwnership>${options.objectOwnership}</ObjectOwnership></Rule></OwnershipControls>`,
        );
      }
      if (req.method === 'GET' && isBucket) {
        res.writeHead(200, { 'content-type': 'application/xml' });
        return res.end(
          '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>',
        );
      }
      if (req.method === 'PUT' && isBucket) {
        options.bucketLocation ??= '';
        res.writeHead(200);
        return res.end();
      }
      if (req.method === 'PUT') {
        const md5 = crypto.createHash('md5').update(body).digest();
        const sent = req.headers['content-md5'];
        if (typeof sent === 'string' && sent !== md5.toString('base64'))
          return xmlError(res, 400, 'BadDigest');
        res.writeHead(200, { etag: `"${md5.toString('hex')}"` });
        return res.end();
      }
      res.writeHead(200);
      res.end();
    });
  });
  const endpoint = await listen(server);
  return {
    endpoint,
    requests,
    options,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Requests held open by `handle` would keep close() waiting.
        server.closeAllConnections();
      }),
  };
}
