// Metadata inheritance for bundle-vol (on by default, as in the reference): the running
// instance's kernel, ramdisk, product codes, block-device mapping and ancestry, read from the
// instance metadata service and merged under what the command line gave.
import type { DeviceMapping } from '../format/manifest.js';
import type { ImdsClient } from './imds.js';

export interface InstanceFacts {
  readonly ancestry?: readonly string[];
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly productCodes?: readonly string[];
  readonly blockDeviceMapping?: readonly DeviceMapping[];
  /** The reference's messages for values it could not read, in its order. */
  readonly unreadable: readonly string[];
}

/** Reads everything inheritable. The service must be reachable (call connect() first). */
export async function readInstanceFacts(client: ImdsClient): Promise<InstanceFacts> {
  const unreadable: string[] = [];
  const ancestors = await client.getList('ancestor-ami-ids');
  if (!ancestors) unreadable.push('ancestor-ami-ids');
  const amiId = await client.get('ami-id');
  if (!amiId) unreadable.push('ami-id');
  const ancestry = [...(ancestors ?? [])];
  if (amiId && !ancestry.includes(amiId)) ancestry.push(amiId);

  const kernelId = await client.get('kernel-id');
  if (!kernelId) unreadable.push('kernel-id');
  const ramdiskId = await client.get('ramdisk-id');
  if (!ramdiskId) unreadable.push('ramdisk-id');
  const productCodes = await client.getList('product-codes');
  if (!productCodes) unreadable.push('product-codes');

  let blockDeviceMapping: DeviceMapping[] | undefined;
  const keys = await client.getList('block-device-mapping/');
  if (keys) {
    blockDeviceMapping = [];
    for (const key of keys) {
      const virtual = key.replace(/\/$/, '');
      const device = await client.get(`block-device-mapping/${virtual}`);
      if (device) blockDeviceMapping.push({ virtual, device });
    }
  }
  if (!blockDeviceMapping?.length) unreadable.push('block-device-mapping');

  return {
    ...(ancestry.length ? { ancestry } : {}),
    ...(kernelId ? { kernelId } : {}),
    ...(ramdiskId ? { ramdiskId } : {}),
    ...(productCodes?.length ? { productCodes } : {}),
    ...(blockDeviceMapping?.length ? { blockDeviceMapping } : {}),
    unreadable,
  };
}

export interface ManifestFacts {
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly productCodes?: readonly string[];
  readonly blockDeviceMapping?: readonly DeviceMapping[];
  readonly ancestry?: readonly string[];
}

/**
 * The reference's merge rules: the command line wins value by value (a kernel id given with
 * --kernel is kept); the block-device mapping is taken whole from the metadata only when no -B
 * was given; ancestry has no option and always comes from the metadata.
 */
export function mergeInherited(given: ManifestFacts, facts: InstanceFacts): ManifestFacts {
  const pick = <T>(mine: T | undefined, theirs: T | undefined): T | undefined => mine ?? theirs;
  const kernelId = pick(given.kernelId, facts.kernelId);
  const ramdiskId = pick(given.ramdiskId, facts.ramdiskId);
  const productCodes = given.productCodes?.length ? given.productCodes : facts.productCodes;
  const blockDeviceMapping = given.blockDeviceMapping?.length
    ? given.blockDeviceMapping
    : facts.blockDeviceMapping;
  const ancestry = facts.ancestry ?? given.ancestry;
  return {
    ...(kernelId ? { kernelId } : {}),
    ...(ramdiskId ? { ramdiskId } : {}),
    ...(productCodes?.length ? { productCodes } : {}),
    ...(blockDeviceMapping?.length ? { blockDeviceMapping } : {}),
    ...(ancestry?.length ? { ancestry } : {}),
  };
}
