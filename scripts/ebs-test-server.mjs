// The EBS direct / EC2 test server (test/support/ebs-server, TypeScript) as a process of its own, for
// scripts/bench-rescue.mjs: run through vite-node, it prints one JSON line (url, region and the
// environment that reaches it with its credentials) and serves until its stdin closes, so the
// bench dying never leaves it behind. No link is modelled: it answers as fast as this machine can.
import { startEbsServer } from '../test/support/ebs-server/index.ts';

const server = await startEbsServer({ completionDelayMs: 0 });
process.stdout.write(`${JSON.stringify({ url: server.url, region: server.region, env: server.env() })}\n`);
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  void server.close().then(() => process.exit(0));
});
