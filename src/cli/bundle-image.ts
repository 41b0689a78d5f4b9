// `amibundle bundle-image` / `ec2-bundle-image`: flags -> bundleImage().
import path from 'node:path';
import { bundleImage } from '../bundle/bundle-image.js';
import { MissingFileError } from '../errors.js';
import {
  aclFromOptions,
  aclOption,
  s3ConnectionOptions,
  streamingConnectionFromOptions,
} from './s3-flags.js';
import {
  bundleNameFromFlags,
  bundleOptionsFromFlags,
  bundlingOptions,
  credentialOptions,
  reportMappingGaps,
} from './bundle-flags.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';

export const bundleImageCommand: Command = {
  spec: {
    name: 'bundle-image',
    tool: 'ec2-bundle-image',
    summary:
      'Bundle a disk image: GNU sparse tar, gzip, AES-128-CBC, 10 MiB parts and a signed manifest, in one streaming pass.',
    options: [
      flag('image', { required: true }),
      ...credentialOptions,
      ...bundlingOptions,
      flag('prefix', { default: "the image's file name" }),
      {
        name: 'upload',
        long: 'upload',
        kind: 'string',
        metavar: 's3://BUCKET/PREFIX',
        help: 'Send the parts and manifest straight to S3 as they are produced: no local parts, bounded memory. Uses the S3 options below.',
      },
      ...s3ConnectionOptions,
      aclOption,
      flag('location', { help: 'With --upload: region to create a missing bucket in. Default: --region.' }),
      flag('inherit', {
        defaultValue: undefined,
        noop: 'bundle-image never reads instance metadata; give --kernel, --ramdisk, -B yourself.',
        help: 'Inherit instance metadata.',
      }),
    ],
    examples: [
      'ec2-bundle-image -i disk.img -k pk.pem -c cert.pem -u 123456789012 -r x86_64 -d /mnt/bundle',
      'amibundle bundle-image -i disk.img -k pk.pem -c cert.pem -u 1234-5678-9012 -p my-ami --fast --batch',
      'amibundle bundle-image -i disk.img -k pk.pem -c cert.pem -u 123456789012 --upload s3://my-bucket/images --region eu-west-1',
    ],
    manual: `Bundles an existing disk image for an instance-store (S3-backed) AMI, as ec2-bundle-image does, and
writes exactly the format EC2 registers:
  * the image is read once; its holes are found with SEEK_DATA/SEEK_HOLE (--sparse);
  * it is archived as one GNU tar member (GNU old-sparse when it has holes), byte-identical to GNU tar 1.34;
  * the tar stream is compressed (parallel single-member gzip, level 6 by default) and encrypted with
    AES-128-CBC under a fresh random key and IV, which are wrapped with RSA to your certificate and EC2's;
  * the ciphertext is cut into 10 MiB parts as it flows, each hashed as it is written;
  * the manifest is written and signed with your key; parts and manifest get their final names only
    when everything succeeded, so a failed or interrupted run leaves nothing behind.
Nothing but the parts and the manifest is written: no temporary archive, no fifo, and the key never
appears on a command line.`,
  },

  async run(opts, ctx) {
    const imagePath = path.resolve(opts.str('image')!);
    const base = await bundleOptionsFromFlags(opts, ctx);
    const name = bundleNameFromFlags(opts);
    const upload = opts.str('upload');
    // The AWS SDK is loaded only when S3 is used.
    const sink = upload
      ? await (
          await import('../s3/streaming.js')
        ).openS3PartSink(streamingConnectionFromOptions(opts, ctx.out), aclFromOptions(opts), upload, {
          out: ctx.out,
          signal: ctx.signal,
        })
      : undefined;
    const result = await bundleImage({
      ...base,
      imagePath,
      ...(name !== undefined ? { name } : {}),
      ...(sink ? { sink } : {}),
    }).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new MissingFileError(`cannot open ${imagePath}`);
      throw err;
    });
    for (const p of result.parts) ctx.out.info(`Created ${p.filename}`);
    reportMappingGaps(base.blockDeviceMapping, ctx);
    ctx.out.info(`Bundle manifest is ${result.manifestLocation}`);
    ctx.out.event({
      type: 'done',
      command: 'bundle-image',
      manifest: result.manifestLocation,
      // What RegisterImage takes as ImageLocation: bucket/prefix/NAME.manifest.xml.
      ...(result.manifestLocation.startsWith('s3://')
        ? { imageLocation: result.manifestLocation.slice(5) }
        : {}),
      name: result.name,
      parts: result.parts.length,
      size: result.size,
      bundledSize: result.bundledSize,
      digest: result.digest,
      seconds: result.seconds,
    });
    ctx.out.info(`${ctx.invokedAs} complete.`);
  },
};
