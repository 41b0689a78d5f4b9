// bundleVolume(): the whole bundle-vol workflow as one library call. A live system (or a
// directory) becomes an image file (makeVolumeImage), which is then, unless only the image is
// wanted, bundled exactly like bundle-image with the kernel, ramdisk, product codes, block-device
// mapping and ancestry of this instance merged in from the metadata service (IMDSv2).
// The metadata service is reached before the long copy, not after, so a run off EC2 without
// --no-inherit fails in seconds.
import { bundleImage } from '../bundle/bundle-image.js';
import type { BundleImageOptions, BundleResult } from '../bundle/bundle-options.js';
import { ImdsClient, type ImdsOptions } from '../ec2/imds.js';
import { mergeInherited, readInstanceFacts, type ManifestFacts } from '../ec2/inherit.js';
import { silentReporter } from '../events.js';
import { makeVolumeImage, type VolumeImageOptions, type VolumeImageResult } from './volume-image.js';

export interface BundleVolumeOptions extends VolumeImageOptions {
  /**
   * How to bundle the image (keys, account, compression, manifest facts given by the caller);
   * without it only the image file is made (`--clone-only`). The bundle is named `prefix`.
   */
  readonly bundle?: Omit<BundleImageOptions, 'imagePath' | 'name'>;
  /** Merge this instance's metadata into the manifest (default true; needs EC2). */
  readonly inherit?: boolean;
  /** Where the metadata service is (default: as the AWS SDKs find it). */
  readonly imds?: ImdsOptions;
}

export interface BundleVolumeResult {
  readonly image: VolumeImageResult;
  /** Absent when no `bundle` options were given. */
  readonly bundle?: BundleResult & {
    /** The block-device mapping written to the manifest, after merging inherited facts. */
    readonly blockDeviceMapping: ManifestFacts['blockDeviceMapping'];
  };
  /** Image and bundle together. */
  readonly seconds: number;
}

function givenFacts(bundle: Omit<BundleImageOptions, 'imagePath' | 'name'>): ManifestFacts {
  return {
    ...(bundle.kernelId ? { kernelId: bundle.kernelId } : {}),
    ...(bundle.ramdiskId ? { ramdiskId: bundle.ramdiskId } : {}),
    ...(bundle.productCodes ? { productCodes: bundle.productCodes } : {}),
    ...(bundle.blockDeviceMapping ? { blockDeviceMapping: bundle.blockDeviceMapping } : {}),
  };
}

export async function bundleVolume(opts: BundleVolumeOptions): Promise<BundleVolumeResult> {
  const out = opts.out ?? silentReporter;
  const { bundle, inherit = true, imds: imdsOptions, ...imageOptions } = opts;
  let imds: ImdsClient | undefined;
  if (bundle && inherit) {
    imds = new ImdsClient(imdsOptions);
    const protocol = await imds.connect();
    out.debug(
      `instance metadata at ${imds.endpoint} answers ${protocol === 'v2' ? 'IMDSv2' : 'IMDSv1 only'}`,
    );
  }

  const image = await makeVolumeImage(imageOptions);
  out.info('Volume cloning done.');
  out.event({
    type: 'image',
    image: image.imagePath,
    sizeMiB: image.sizeMiB,
    partition: image.partition,
    fsType: image.fsType,
    uuid: image.uuid,
    problems: image.copy.problems.length,
    seconds: image.seconds,
  });
  if (!bundle) return { image, seconds: image.seconds };

  let facts = givenFacts(bundle);
  if (imds) {
    const instance = await readInstanceFacts(imds);
    for (const item of instance.unreadable) out.info(`Unable to read instance meta-data for ${item}`);
    facts = mergeInherited(facts, instance);
  }
  const result = await bundleImage({
    ...bundle,
    kernelId: undefined,
    ramdiskId: undefined,
    productCodes: undefined,
    blockDeviceMapping: undefined,
    ...facts,
    imagePath: image.imagePath,
    name: imageOptions.prefix,
  });
  return {
    image,
    bundle: { ...result, blockDeviceMapping: facts.blockDeviceMapping },
    seconds: result.seconds + image.seconds,
  };
}
