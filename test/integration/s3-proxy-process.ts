// The test proxy in a process of its own, for the benchmark: its work then does not share the
// measured client's event loop. Arguments: TARGET LATENCY_MS BYTES_PER_SECOND, where TARGET is a
// port, or `discard` for a stand-in S3 that stores nothing (to see the link and the client
// without the local server's cost). Prints `PORT n` when listening; exits when stdin closes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TcpProxy } from '../support/tcp-proxy.js';

/** Answers what upload-bundle asks, reading and dropping every body. */
async function startDiscardServer(): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.searchParams.has('location')) {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end('<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></LocationConstraint>');
      } else if (req.method === 'GET' && url.searchParams.has('ownershipControls')) {
        res.writeHead(404, { 'content-type': 'application/xml' });
        res.end('<Error><Code>OwnershipControlsNotFoundError</Code></Error>');
      } else if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end('<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>');
      } else {
        res.writeHead(200, { etag: '"00000000000000000000000000000000"' });
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

const [target, latency, rate] = process.argv.slice(2);
const targetPort = target === 'discard' ? await startDiscardServer() : Number(target);
const proxy = new TcpProxy(targetPort);
proxy.latencyMs = Number(latency ?? 0);
proxy.bytesPerSecond = Number(rate ?? 0);
await proxy.start();
process.stdout.write(`PORT ${proxy.port}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void proxy.close().then(() => process.exit(0));
});
