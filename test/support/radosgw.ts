// A real S3 server for integration tests: Ceph radosgw (one mon, one memstore OSD) on
// 127.0.0.1, started by scripts/start-radosgw.sh in a private temp dir. The script stops every
// daemon by PID when its stdin closes, so even a killed test run leaves nothing behind.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { projectRoot } from './fixtures.js';

export interface Radosgw {
  readonly endpoint: string;
  readonly port: number;
  readonly accessKey: string;
  readonly secretKey: string;
  /** An SDK client for checking what the server holds (independent of amibundle's code). */
  readonly s3: S3Client;
  /** Flags that point a command at this server with its credentials. */
  readonly cliFlags: readonly string[];
  /** Stops only the gateway (the stored objects survive in the OSD). */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  stop(): Promise<void>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  getObject(bucket: string, key: string): Promise<Buffer>;
  putObject(bucket: string, key: string, body: Buffer): Promise<void>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

const INSTALL_HINT = 'apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd';

export async function startRadosgw(): Promise<Radosgw> {
  const script = path.join(projectRoot, 'scripts/start-radosgw.sh');
  const child: ChildProcessWithoutNullStreams = spawn('bash', [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = readline.createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  const early: string[] = [];
  lines.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else early.push(line);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const nextLine = (what: string, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const queued = early.shift();
      if (queued !== undefined) return resolve(queued);
      const timer = setTimeout(
        () => reject(new Error(`radosgw: no answer to ${what} within ${timeoutMs} ms; ${stderr}`)),
        timeoutMs,
      );
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
      void exited.then((code) =>
        reject(
          new Error(
            `radosgw could not start (exit ${code}): ${stderr.trim() || 'no message'}; needs ${INSTALL_HINT}`,
          ),
        ),
      );
    });

  const ready = await nextLine('start', 120_000).catch((err: unknown) => {
    child.kill('SIGTERM');
    throw err;
  });
  const m = /^READY (\d+) (\S+) (\S+)$/.exec(ready);
  if (!m) {
    child.kill('SIGTERM');
    throw new Error(`radosgw: unexpected output '${ready}'; ${stderr}`);
  }
  const port = Number(m[1]);
  const accessKey = m[2]!;
  const secretKey = m[3]!;
  const endpoint = `http://127.0.0.1:${port}`;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const s3 = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const command = async (cmd: string): Promise<void> => {
    child.stdin.write(`${cmd}\n`);
    const answer = await nextLine(cmd, 60_000);
    if (answer !== `OK ${cmd}`) throw new Error(`radosgw: ${cmd} answered '${answer}'`);
  };

  return {
    endpoint,
    port,
    accessKey,
    secretKey,
    s3,
    cliFlags: ['--url', endpoint, '-a', accessKey, '-s', secretKey],
    stopGateway: () => command('stop-rgw'),
    startGateway: () => command('start-rgw'),
    async stop() {
      s3.destroy();
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 30_000);
      await exited;
      clearTimeout(timer);
    },
    async listKeys(bucket, prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async getObject(bucket, key) {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    },
    async putObject(bucket, key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
    async deleteObject(bucket, key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}
