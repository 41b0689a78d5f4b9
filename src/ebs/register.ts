// Registering an EBS-backed AMI from a completed snapshot: RegisterImage with the snapshot as the
// root device, HVM, the boot mode, ENA and SR-IOV flags, IMDSv2 required unless asked otherwise,
// and EnableImageDeprecation as a second call when a deprecation time is given.
import type { ArchitectureValues } from '@aws-sdk/client-ec2';
import { BundleError } from '../errors.js';
import { DEFAULT_ROOT_DEVICE, type BootMode } from './boot-mode.js';
import { loadEc2Sdk, type EbsClients } from './clients.js';
import type { EbsConnectionConfig } from './connection.js';
import { withEbsRetry } from './retry.js';

export interface RegisterRequest {
  readonly name: string;
  readonly description?: string;
  readonly snapshotId: string;
  /** x86_64 or arm64 (EC2's names; i386 is x86_64-only on HVM EBS these days, still passed). */
  readonly architecture: string;
  /** Absent = EC2's default for the instance type. */
  readonly bootMode?: BootMode;
  readonly ena: boolean;
  readonly sriov: boolean;
  /** Require IMDSv2 (ImdsSupport v2.0). */
  readonly imdsV2: boolean;
  readonly rootDevice?: string;
  /** Size of the root volume in GiB (absent = the snapshot's). */
  readonly volumeGiB?: number;
  readonly deprecateAt?: Date;
}

/** ec2-ami-tools' architecture names to EC2's. */
export function ec2Architecture(arch: string): string {
  return arch === 'aarch64' ? 'arm64' : arch;
}

export async function registerImage(
  clients: EbsClients,
  conn: EbsConnectionConfig,
  r: RegisterRequest,
  signal?: AbortSignal,
): Promise<string> {
  const rootDevice = r.rootDevice ?? DEFAULT_ROOT_DEVICE;
  const { EnableImageDeprecationCommand, RegisterImageCommand } = await loadEc2Sdk();
  const res = await withEbsRetry(
    conn.retry,
    { op: 'RegisterImage', snapshotId: r.snapshotId },
    () =>
      clients.ec2.send(
        new RegisterImageCommand({
          Name: r.name,
          ...(r.description !== undefined ? { Description: r.description } : {}),
          Architecture: ec2Architecture(r.architecture) as ArchitectureValues,
          VirtualizationType: 'hvm',
          RootDeviceName: rootDevice,
          BlockDeviceMappings: [
            {
              DeviceName: rootDevice,
              Ebs: {
                SnapshotId: r.snapshotId,
                DeleteOnTermination: true,
                VolumeType: 'gp3',
                ...(r.volumeGiB !== undefined ? { VolumeSize: r.volumeGiB } : {}),
              },
            },
          ],
          ...(r.bootMode !== undefined ? { BootMode: r.bootMode } : {}),
          EnaSupport: r.ena,
          ...(r.sriov ? { SriovNetSupport: 'simple' } : {}),
          ...(r.imdsV2 ? { ImdsSupport: 'v2.0' } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      ),
    signal ? { signal } : {},
  );
  if (!res.ImageId) throw new BundleError('RegisterImage answered without an image id');
  if (r.deprecateAt !== undefined) {
    const imageId = res.ImageId;
    await withEbsRetry(
      conn.retry,
      { op: 'EnableImageDeprecation', imageId },
      () =>
        clients.ec2.send(
          new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: r.deprecateAt! }),
          signal ? { abortSignal: signal } : {},
        ),
      { notFoundMayClear: true, ...(signal ? { signal } : {}) },
    );
  }
  return res.ImageId;
}
