// `amibundle doctor`: a preflight that fails in seconds instead of after an hour. Each check
// prints ok, warning or FAILED with what it found (and the fix); any failure exits 254.
import path from 'node:path';
import { AmiError, ExitCode, UsageError } from '../errors.js';
import type { CheckResult } from '../doctor/check.js';
import {
  checkDestination,
  checkEc2Cert,
  checkEngines,
  checkHostTools,
  checkImageBoot,
  checkImageSize,
  checkKeys,
  imageFacts,
} from '../doctor/local-checks.js';
import { checkBucket, checkCredentialSource } from '../doctor/s3-checks.js';
import { aclFromOptions, aclOption, connectionFromOptions, s3ToolConnectionOptions } from './s3-flags.js';
import { parseBucketArg } from '../s3/location.js';
import type { Command, RunContext } from './command.js';
import { flag } from './flag-catalog.js';
import { ebsConnectionOptions } from './ebs-flags.js';

const PURPOSES = ['bundle-image', 'bundle-vol', 'upload', 'to-ebs'] as const;
type Purpose = (typeof PURPOSES)[number];
/** Manifest and rounding on top of the data bytes: generous, the point is a safe bound. */
const MANIFEST_ALLOWANCE = 1 << 20;

const LABEL: Record<CheckResult['status'], string> = { ok: 'ok', warning: 'warning', failed: 'FAILED' };

function report(ctx: RunContext, r: CheckResult): void {
  if (ctx.out.mode === 'json') {
    ctx.out.event({ type: 'check', ...r });
    return;
  }
  const stop = /[.!?]$/.test(r.message) ? ' ' : '. ';
  const fix = r.status !== 'ok' && r.fix !== undefined ? `${stop}Fix: ${r.fix}` : '';
  ctx.out.info(`${LABEL[r.status].padEnd(8)}${r.name}: ${r.message}${fix}`);
}

export const doctorCommand: Command = {
  spec: {
    name: 'doctor',
    summary: 'Check credentials, bucket, space, image, keys, host tools and speed before a long run.',
    options: [
      flag('bucket', {
        help: 'Bucket to check: exists, region, ACLs enabled, and a probe object written with --acl and removed.',
      }),
      ...s3ToolConnectionOptions,
      // --for to-ebs: the EBS flags S3 has no counterpart for.
      ...ebsConnectionOptions.filter((o) => ['endpointUrl', 'ec2Url', 'attempts'].includes(o.name)),
      aclOption,
      flag('destination', {
        metavar: 'DIRECTORY',
        // Checked by the destination check itself, which says what is wrong with it.
        path: undefined,
        help: 'Where the bundle will be written: free space against the projected bundle size, and whether it is a tmpfs (RAM).',
      }),
      flag('image', {
        help: "Image to bundle: its size against EC2's 10 GiB root limit, and whether it boots under HVM.",
      }),
      flag('privatekey', { help: 'Private key to sign with: loads, and matches -c.' }),
      flag('cert', { help: 'Certificate of the private key.' }),
      flag('ec2cert', {
        default: undefined,
        help: 'EC2 certificate to wrap the bundle key to. Default: looked up as bundle-image does.',
      }),
      flag('volume', {
        help: 'With --for bundle-vol: the volume to be bundled (its file system type picks the mkfs).',
      }),
      {
        name: 'for',
        long: 'for',
        kind: 'string',
        metavar: 'COMMAND',
        choices: PURPOSES,
        help: 'The command about to run: bundle-vol adds the host-tool checks; upload skips the EC2 certificate.',
      },
    ],
    examples: [
      'amibundle doctor -b my-bucket/images -i disk.img -k pk.pem -c cert.pem',
      'amibundle doctor --for bundle-vol -d /mnt/scratch -b my-bucket --region eu-west-1 --json',
    ],
    manual: `Runs quick checks before a bundle, bundle-vol or upload, each only when its inputs are given:

  credentials   found, and where from (flags, environment, profile, container, instance
                profile); only the access key id's ends are shown, never the secret
  bucket        -b: exists, in the region asked (--region), ACLs enabled (a bucket with
                Object Ownership BucketOwnerEnforced refuses aws-exec-read), and a probe
                object .amibundle-doctor-<random> written with --acl and removed
  destination   -d (default /tmp): free space against the projected bundle size of -i (its
                data bytes: compressed output is taken to be no larger), and a tmpfs warning
  image-size    -i: against the 10 GiB limit of an instance-store root device
  image-boot    -i: an MBR with boot signature 0x55AA and GRUB boot code (or a GPT with a
                BIOS boot partition) boots under HVM; a bare file system (bundle-vol -P none)
                suits only paravirtual launches with --kernel
  keys          -k/-c: load and match
  ec2-cert      the EC2 certificate the bundle key is wrapped to (not with --for upload)
  host-tools    --for bundle-vol: rsync, mkfs for the volume's type, losetup, sfdisk,
                grub-install and GRUB's i386-pc modules
  speed         the native addon, with libdeflate (gzip compression) and ISA-L (--fast,
                parallel restore); without them the same bundles, only slower: a warning

Each check prints one line: ok, warning or FAILED, what was found and, unless ok, the fix.
Exits 0 when nothing failed (warnings allowed), 254 when anything did. With --json, one
"check" event per check (name, status, message, fix) and a "done" event.`,
  },

  async run(opts, ctx) {
    const purpose = opts.str('for') as Purpose | undefined;
    const bucketArg = opts.str('bucket');
    const target = bucketArg !== undefined ? parseBucketArg(bucketArg) : undefined;
    const image = opts.str('image');
    const keyPath = opts.str('privatekey');
    const certPath = opts.str('cert');
    const dest = path.resolve(opts.str('destination')!);
    if (purpose === 'upload' && target === undefined)
      throw new UsageError('--for upload needs -b BUCKET to check');
    ctx.out.event({ type: 'start', command: 'doctor' });

    const results: CheckResult[] = [];
    const add = (r: CheckResult): void => {
      results.push(r);
      report(ctx, r);
    };

    if (purpose === 'to-ebs') {
      const { checkEbsAccess } = await import('../doctor/ebs-checks.js');
      const { ebsConnectionFromOptions } = await import('./ebs-flags.js');
      for (const r of await checkEbsAccess(ebsConnectionFromOptions(opts))) add(r);
    }
    const wantsS3 = target !== undefined || purpose === 'upload';
    if (wantsS3) {
      const conn = connectionFromOptions(opts, ctx.out);
      const acl = aclFromOptions(opts);
      const creds = await checkCredentialSource(conn, ctx.out);
      add(creds);
      if (creds.status !== 'failed' && target !== undefined)
        for (const r of await checkBucket(conn, target, acl, ctx.out)) add(r);
    }

    let projected: number | undefined;
    if (image !== undefined) {
      const facts = await imageFacts(image);
      projected = facts.dataBytes + MANIFEST_ALLOWANCE;
      add(checkImageSize(image, facts));
      add(checkImageBoot(image));
    }
    const local = purpose !== 'upload' && purpose !== 'to-ebs';
    if (local) add(checkDestination(dest, projected));
    if (keyPath !== undefined || certPath !== undefined) add(checkKeys(keyPath, certPath));
    if (local) add(checkEc2Cert(opts.str('ec2cert')));
    if (purpose === 'bundle-vol') add(checkHostTools(opts.str('volume')!));
    if (local) add(checkEngines());

    const count = (s: CheckResult['status']): number => results.filter((r) => r.status === s).length;
    const failures = count('failed');
    ctx.out.event({
      type: 'done',
      command: 'doctor',
      checks: results.length,
      ok: count('ok'),
      warnings: count('warning'),
      failed: failures,
    });
    if (failures > 0)
      throw new AmiError(
        `doctor: ${failures} of ${results.length} checks FAILED (see the lines above for each fix)`,
        ExitCode.runtime,
      );
    ctx.out.info(
      `All ${results.length} checks passed${count('warning') > 0 ? ` (${count('warning')} with warnings)` : ''}.`,
    );
  },
};
