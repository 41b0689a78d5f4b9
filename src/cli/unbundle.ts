// `amibundle unbundle` / `ec2-unbundle`: flags -> restoreBundle() from a local bundle directory.
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { DirPartSource } from '../parts/dir-part-source.js';
import type { PartSource } from '../parts/part-source.js';
import { s3ConnectionOptions, streamingConnectionFromOptions } from './s3-flags.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import { restoreBundle } from '../restore/restore.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';
import { readManifestFile } from '../format/manifest-file.js';
import type { DiskFormat } from '../disk/image-sink.js';
import {
  diskFormatOption,
  ec2KeyOption,
  manifestOption,
  noSignatureCheckOption,
  privateKeyOption,
  signatureCertOption,
  signatureEvent,
  signatureFlags,
  signatureLine,
} from './restore-flags.js';
import { deviceOptions, deviceSinkFromOptions, hvmFromOptions, hvmOptions } from './rescue-flags.js';
import { restoreBundleAsHvmDisk } from '../hvm/restore-hvm.js';
import type { RestoreResult } from '../restore/restore-options.js';

export const unbundleCommand: Command = {
  spec: {
    name: 'unbundle',
    tool: 'ec2-unbundle',
    summary:
      'Restore the image from a bundle: every part SHA-1 checked, digest and size verified, holes kept.',
    options: [
      manifestOption("The bundle's manifest (NAME.manifest.xml). Required unless --from is given.", false),
      {
        name: 'from',
        long: 'from',
        kind: 'string',
        metavar: 's3://BUCKET/PREFIX/NAME.manifest.xml',
        help: 'Restore straight from S3: the manifest and parts are read there, each part checked, none stored on disk. Uses the S3 options below.',
      },
      privateKeyOption('The RSA private key the bundle was made for (PEM).', true),
      flag('source', { defaultValue: '.', default: 'the current directory' }),
      flag('destination', {
        metavar: 'DIRECTORY',
        defaultValue: '.',
        default: 'the current directory',
        help: 'Directory the image is written to (as NAME).',
      }),
      diskFormatOption,
      ...deviceOptions,
      ...hvmOptions,
      ec2KeyOption,
      signatureCertOption(),
      noSignatureCheckOption,
      ...s3ConnectionOptions,
    ],
    examples: [
      'ec2-unbundle -m /mnt/bundle/image.manifest.xml -k pk.pem -s /mnt/bundle -d /mnt/restore',
      'amibundle unbundle --from s3://my-bucket/images/my-ami.manifest.xml -k pk.pem -d /var/tmp --region eu-west-1',
      'amibundle unbundle -m image.manifest.xml -k pk.pem --cert cert.pem -d /var/tmp',
      'amibundle unbundle -m image.manifest.xml -k pk.pem -d /var/tmp --format vmdk',
      'amibundle unbundle --from s3://my-bucket/images/my-ami.manifest.xml -k pk.pem --device /dev/xvdf --assume-zeroed --check',
      'sudo amibundle unbundle -m image.manifest.xml -k pk.pem -d /var/tmp --hvm --format vmdk',
    ],
    manual: `Restores the disk image of a bundle (written by amibundle or by ec2-ami-tools). First the
manifest signature is verified, by default with the public half of -k (the bundler signs with
that key pair), or with --cert CERT when given; with --ec2-key (-k is then EC2's key, not the
signer's) it is checked only with --cert. A bundle signed by another key is refused (exit 254);
--no-signature-check skips the check, and the output always says which it was. Each part's SHA-1
is checked before its bytes are used; the parts are decrypted, decompressed and untarred in one
stream; the tar stream's SHA-1 must equal the manifest's digest and the image size its size. The
image is written sparse (holes where the archive has them and where whole 4 KiB blocks are zero)
under a temporary name, and renamed to DEST/NAME only when every check passed. A bundle holding
anything but one regular file (links, devices, paths, a second file) is refused.

--format qcow2, vmdk (streamOptimized), vhd (dynamic) or vhd-fixed writes DEST/NAME.qcow2, .vmdk or
.vhd directly from the stream, never through a raw copy; holes and all-zero clusters are not
stored. The virtual size is the image's rounded up to a sector (VHD: to a whole CHS geometry).

--device DEVICE writes the image onto a block device (what AWS's instance-store-to-EBS recipe
does with dd), from a local bundle or --from S3. It is refused (one line, exit 254) when the
device, one of its partitions or the disk it is a partition of is mounted, used as swap or held by
LVM/RAID, and when it is smaller than the image; a path that is not a block device is exit 2. It
asks before writing unless --batch (without a terminal on stdin, --batch is required). The device
is opened exclusively, holes are written as zeros unless --assume-zeroed (a new EBS volume reads
zeros), and the run ends with an fsync; --check then re-reads the image from the device and
compares its SHA-1 with that of what was written. The bytes reach the device as they are
restored: a bundle that fails its digest check leaves the device partly written.

--hvm (root) turns a partitionless file-system image (an old paravirtual AMI, bundle-vol -P none)
into a whole disk that boots on HVM and Nitro instances: an MBR (or --partition gpt, with a BIOS
boot partition) whose partition 1 is the file system, GRUB 2 for BIOS installed from this host's
grub-install, booting the newest /boot/vmlinuz-* with its initrd, root=UUID=… and a serial console
(console=tty0 console=ttyS0), and /etc/fstab with the root by UUID and the PV instance's extra
disks (/dev/sda2, /dev/sdb, /dev/xvdb…, /mnt) commented out. An image without a kernel booted
one from an AKI: give one with --kernel-from DIR. Nothing from the image is executed. The image
is restored and assembled in temporary files next to the output, which is written in --format.`,
  },

  async run(opts, ctx) {
    const manifestPath = opts.str('manifest');
    const from = opts.str('from');
    if (manifestPath && from) throw new UsageError('--manifest and --from may not both be provided');
    if (!manifestPath && !from)
      throw new UsageError('missing mandatory parameter: --manifest (or --from s3://…)');
    const { certFile, skipSignature } = signatureFlags(opts);
    if (opts.flag('hvm') && opts.str('device') !== undefined)
      throw new UsageError('--hvm and --device may not both be provided');
    const hvm = hvmFromOptions(opts);
    let parsed: ParsedManifest;
    let source: PartSource;
    let close = (): void => undefined;
    if (from) {
      // The AWS SDK is loaded only when S3 is used.
      const s3 = await (
        await import('../s3/streaming.js')
      ).openS3PartSource(streamingConnectionFromOptions(opts, ctx.out), from, {
        out: ctx.out,
        signal: ctx.signal,
      });
      parsed = s3.manifest;
      source = s3;
      close = () => s3.close();
    } else {
      parsed = readManifestFile(manifestPath!);
      source = new DirPartSource(opts.str('source')!);
    }
    const imageSink = await deviceSinkFromOptions(opts, ctx, parsed.manifest.image.size).catch((err) => {
      close();
      throw err;
    });
    const destination = path.resolve(opts.str('destination')!);
    ctx.out.event({
      type: 'start',
      command: 'unbundle',
      manifest: manifestPath ?? from,
      name: parsed.manifest.image.name,
    });
    const format = opts.str('format') as DiskFormat;
    const common = {
      manifest: parsed,
      source,
      privateKeyPem: fs.readFileSync(opts.str('privatekey')!, 'utf8'),
      useEc2Key: opts.flag('ec2Key'),
      skipSignature,
      ...(certFile ? { certPem: fs.readFileSync(certFile, 'utf8') } : {}),
      signal: ctx.signal,
      out: ctx.out,
    };
    let result: RestoreResult;
    if (hvm) {
      const made = await restoreBundleAsHvmDisk({ ...common, destination, format, ...hvm }).finally(close);
      result = made.result;
      ctx.out.info(signatureLine(result.signature, certFile));
      ctx.out.info(
        `Bootable disk ${made.disk.path} (${made.disk.sizeBytes} bytes, ${format}, kernel ${made.disk.kernel}, root UUID ${made.disk.uuid}) from the image ${parsed.manifest.image.name} (${result.size} bytes, digest ${result.digest})`,
      );
    } else {
      result = await restoreBundle({
        ...common,
        ...(imageSink ? { imageSink } : { destination }),
        format,
      }).finally(close);
      ctx.out.info(signatureLine(result.signature, certFile));
      ctx.out.info(`Restored ${result.imagePath} (${result.size} bytes, digest ${result.digest})`);
    }
    ctx.out.event({
      type: 'done',
      command: 'unbundle',
      image: result.imagePath,
      size: result.size,
      digest: result.digest,
      signatureVerified: result.signatureVerified,
      signature: signatureEvent(result.signature, certFile),
      seconds: result.seconds,
      stages: result.stages,
    });
    ctx.out.info('Unbundle complete.');
  },
};
