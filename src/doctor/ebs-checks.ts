// The checks of `doctor --for to-ebs`: region and credentials as the SDK chain finds them, and
// the one permission that can be probed without creating anything (ec2:DescribeSnapshots). The
// EBS direct writes and RegisterImage cannot be probed without making a snapshot or an image;
// the check line says so, and the first real request reports a refusal with the permission named.
import { DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { checkEbsSetup, createEbsClients } from '../ebs/clients.js';
import type { EbsConnectionConfig } from '../ebs/connection.js';
import { toEbsError, withEbsRetry } from '../ebs/retry.js';
import { failed, failedFrom, ok, type CheckResult } from './check.js';

export async function checkEbsAccess(conn: EbsConnectionConfig): Promise<CheckResult[]> {
  const clients = createEbsClients(conn);
  try {
    let region: string;
    try {
      region = await checkEbsSetup(clients, conn);
    } catch (err) {
      return [failedFrom('ebs-credentials', err)];
    }
    const results: CheckResult[] = [
      ok('ebs-credentials', `region ${region}; credentials found by the AWS SDK chain`),
    ];
    try {
      await withEbsRetry(conn.retry, { op: 'DescribeSnapshots' }, () =>
        clients.ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], MaxResults: 5 })),
      );
      results.push(ok('ebs-describe', 'ec2:DescribeSnapshots allowed (to-ebs waits for completion with it)'));
    } catch (err) {
      const e = toEbsError(err, { op: 'DescribeSnapshots' }, 1);
      results.push(failed('ebs-describe', e.message, e.hint));
      return results;
    }
    results.push(
      ok(
        'ebs-not-probed',
        'ebs:StartSnapshot, ebs:PutSnapshotBlock, ebs:CompleteSnapshot, ebs:ListSnapshotBlocks/GetSnapshotBlock (parent) and ec2:RegisterImage cannot be probed without creating a snapshot or image; a refusal names the missing permission',
      ),
    );
    return results;
  } finally {
    clients.destroy();
  }
}
