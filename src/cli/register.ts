// `amibundle register SNAPSHOT --name NAME`: an HVM AMI from an existing, completed EBS snapshot
// (the second half of `to-ebs --register`, e.g. after a registration failed or for a snapshot
// made elsewhere).
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { checkEbsSetup, createEbsClients } from '../ebs/clients.js';
import { registerImage } from '../ebs/register.js';
import { withEbsRetry } from '../ebs/retry.js';
import { BundleError, UsageError } from '../errors.js';
import type { Command } from './command.js';
import { ebsConnectionFromOptions, ebsConnectionOptions } from './ebs-flags.js';
import { registerFlagsFromOptions, registerOptions } from './ebs-register-flags.js';

export const registerCommand: Command = {
  spec: {
    name: 'register',
    summary: 'Register an HVM AMI from a completed EBS snapshot (boot mode, ENA, IMDSv2, deprecation).',
    positionals: { metavar: 'SNAPSHOT', help: 'The snapshot id, snap-…' },
    options: [
      {
        name: 'name',
        long: 'name',
        kind: 'string',
        metavar: 'NAME',
        required: true,
        help: 'Name of the AMI.',
      },
      ...registerOptions,
      ...ebsConnectionOptions,
    ],
    examples: [
      'amibundle register snap-0123456789abcdef0 --name my-ami',
      'amibundle register snap-0123456789abcdef0 --name my-ami --boot-mode uefi --deprecate-at 2027-06-30T00:00:00Z',
    ],
    manual: `Registers an HVM AMI whose root device (--root-device, default /dev/xvda; gp3, deleted on
termination) is made from SNAPSHOT, which must be completed. ENA support is on and IMDSv2
required unless --no-ena / --no-imds-v2. Without --boot-mode, EC2 chooses (register cannot look
inside the snapshot; to-ebs --register finds the mode from the image). The architecture is -r,
default x86_64. --deprecate-at sets a deprecation time with a separate EnableImageDeprecation call.
Prints the AMI id.`,
  },

  async run(opts, ctx) {
    if (opts.positionals.length !== 1 || !/^snap-[0-9a-f]+$/.test(opts.positionals[0]!))
      throw new UsageError('register takes one SNAPSHOT id (snap-…)');
    const snapshotId = opts.positionals[0]!;
    const conn = ebsConnectionFromOptions(opts);
    const reg = registerFlagsFromOptions(opts);
    const clients = createEbsClients(conn);
    try {
      await checkEbsSetup(clients, conn);
      const res = await withEbsRetry(conn.retry, { op: 'DescribeSnapshots', snapshotId }, () =>
        clients.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), {
          abortSignal: ctx.signal,
        }),
      );
      const snap = res.Snapshots?.[0];
      if (snap?.State !== 'completed')
        throw new BundleError(
          `snapshot ${snapshotId} is ${snap?.State ?? 'unknown'}, not completed: EC2 registers completed snapshots only`,
          'wait until it is completed',
        );
      const imageId = await registerImage(
        clients,
        conn,
        { ...reg, name: opts.str('name')!, snapshotId, architecture: reg.architecture ?? 'x86_64' },
        ctx.signal,
      );
      ctx.out.event({ type: 'done', command: 'register', snapshotId, imageId });
      ctx.out.info(imageId);
    } finally {
      clients.destroy();
    }
  },
};
