// `amibundle upload-bundle` / `ec2-upload-bundle`: flags -> uploadBundle().
import path from 'node:path';
import { UsageError } from '../errors.js';
import {
  aclFromOptions,
  aclOption,
  connectionFromOptions,
  s3ToolConnectionOptions,
  bucketOption,
} from './s3-flags.js';
import { parseBucketArg } from '../s3/location.js';
import { uploadBundle } from '../s3/upload-bundle.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';

export const uploadBundleCommand: Command = {
  spec: {
    name: 'upload-bundle',
    tool: 'ec2-upload-bundle',
    summary: 'Upload a bundle to S3: parts in parallel with Content-MD5, resumable, the manifest last.',
    options: [
      bucketOption(
        'Bucket, optionally followed by a key prefix. A missing bucket is created (ACLs enabled).',
      ),
      flag('manifest', { required: true }),
      flag('directory', { default: "the manifest's directory" }),
      ...s3ToolConnectionOptions,
      aclOption,
      flag('location'),
      {
        name: 'part',
        long: 'part',
        kind: 'int',
        metavar: 'N',
        help: 'Upload only parts with index N and above (resume is automatic; this is for compatibility).',
      },
      {
        name: 'skipmanifest',
        long: 'skipmanifest',
        kind: 'flag',
        help: 'Do not upload the manifest.',
      },
    ],
    examples: [
      'ec2-upload-bundle -b my-bucket/images -m /tmp/image.manifest.xml -a AKIA... -s ... --region eu-west-1 --retry',
      'amibundle upload-bundle -b my-bucket -m /tmp/image.manifest.xml --concurrency 16',
      'amibundle upload-bundle -b my-bucket -m image.manifest.xml --url http://127.0.0.1:7480 --acl public-read',
    ],
    manual: `Uploads a bundle (parts and manifest) to S3. Every part named by the manifest must be present and
match its SHA-1 before anything is sent. Parts go up in parallel (--concurrency, default 8), each with
Content-MD5 so S3 refuses a damaged body. A part already in S3 with the same size and MD5 ETag is
skipped, so running the command again after a failure sends only what is missing. The manifest is
uploaded last, only once every part is stored. A missing bucket is created in the requested region
with ACLs enabled; a bucket in another region than requested stops the run (exit 10); a bucket
whose ACLs are disabled is reported before any upload, because EC2 reads bundles through the
aws-exec-read ACL. Credentials: -a/-s/-t, else the AWS SDK default chain (environment, profiles,
SSO, container, instance profile). Failures exit 3 with the bucket, key, HTTP status and S3 code.`,
  },

  async run(opts, ctx) {
    const target = parseBucketArg(opts.str('bucket')!);
    const location = opts.str('location');
    const connection = connectionFromOptions(opts, ctx.out, location !== undefined ? { location } : {});
    const fromPart = opts.int('part');
    if (fromPart !== undefined && fromPart < 0)
      throw new UsageError(`--part has invalid value '${fromPart}'`);
    const manifestPath = opts.str('manifest')!;
    const directory = opts.str('directory');
    ctx.out.event({ type: 'start', command: 'upload-bundle', manifest: manifestPath, bucket: target.bucket });
    await uploadBundle({
      manifestPath,
      ...(directory !== undefined ? { partsDir: path.resolve(directory) } : {}),
      target,
      connection,
      acl: aclFromOptions(opts),
      ...(fromPart !== undefined ? { fromPart } : {}),
      skipManifest: opts.flag('skipmanifest'),
      out: ctx.out,
      signal: ctx.signal,
    });
  },
};
